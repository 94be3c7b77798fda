"""Roles: who the user is (role, office path) and role checks. Object scope is core.scope."""

from django.db.models import QuerySet

from .errors import Forbidden
from .models import Role

ALL_STAFF_ROLES = frozenset(Role.values) - {Role.CONSUMER}


def role_of(user) -> str | None:
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return Role.ADMIN
    profile = getattr(user, "staff", None)
    return profile.role if profile else None


def office_path_of(user) -> str | None:
    """Materialised path of the user's office; '' means the whole utility."""
    role = role_of(user)
    if role is None:
        return None
    if role == Role.ADMIN:
        return ""
    profile = user.staff
    return profile.office.path if profile.office_id else ""


def require_role(user, *roles: str) -> str:
    role = role_of(user)
    if role is None or (roles and role not in roles and role != Role.ADMIN):
        raise Forbidden("your role may not do this", code="role_not_allowed", details={"required": sorted(roles)})
    return role


def scope_by_office(user, queryset: QuerySet, office_path_field: str) -> QuerySet:
    """Restrict `queryset` to the user's office subtree (`office_path_field` holds Office.path).
    Kept for office-level records; the rule lives in core.scope (accounts: `core.scope.scope_accounts`)."""
    from .scope import scope_offices

    return scope_offices(user, queryset, office_path_field)
