"""One scope rule: which records a user may see, and who may do what (data/core/permissions.toml).

Every API endpoint and page looks records up through `get_scoped` (or filters lists through
`scope_accounts` / `scope_offices`): a record out of the caller's scope raises the very same
`NotFound` as a record that does not exist — same status, code and message — so a probe learns
nothing about numbers it may not see. Core imports no other app: accounts are filtered by field
name (`office_path`, `consumer__user`, `sanctioned_load`, `load_unit`, `group`), with a prefix for
records that hang off an account (`account__`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet

from . import regdata
from .errors import Forbidden, NotFound
from .models import Role
from .permissions import office_path_of, role_of

NOTHING = Q(pk__in=[])
# Not Q(): an empty Q vanishes when OR-ed with another (Q() | Q(x) is Q(x)), so "everything" must be
# a real condition for record_q / payments' "account in scope or taken at my office" to hold.
EVERYTHING = ~NOTHING


def rules() -> dict[str, Any]:
    return regdata.load("core/permissions.toml")


def not_found(kind: str, key: object = "", *, code: str | None = None) -> NotFound:
    """The one answer for 'absent or not yours': names only what the caller gave."""
    label = kind.replace("_", " ")
    message = f"no {label} {key}".rstrip() if key != "" else f"no such {label}"
    return NotFound(message, code=code or f"{kind}_not_found")


def get_scoped(queryset: QuerySet, error: NotFound, **lookup):
    """The record matching `lookup` within an already scoped queryset, or `error` — the same for
    a record that does not exist and for one out of scope."""
    obj = queryset.filter(**lookup).first()
    if obj is None:
        raise error
    return obj


# --- offices ------------------------------------------------------------------------------------


def office_covers(user, path: str | None) -> bool:
    """Whether the user's office is `path` or above it (admin and office-less staff: everywhere)."""
    mine = office_path_of(user)
    if mine is None or role_of(user) == Role.CONSUMER:
        return False
    return mine == "" or (path or "").startswith(mine)


def office_q(user, office_path_field: str) -> Q:
    """The Q selecting records whose `office_path_field` lies in the user's office subtree."""
    path = office_path_of(user)
    if path is None or role_of(user) == Role.CONSUMER:
        return NOTHING
    return Q(**{f"{office_path_field}__startswith": path}) if path else EVERYTHING


def scope_offices(user, queryset: QuerySet, office_path_field: str) -> QuerySet:
    """Staff: the office subtree (`office_path_field` holds Office.path); consumers and anonymous: nothing."""
    path = office_path_of(user)
    if path is None or role_of(user) == Role.CONSUMER:
        return queryset.none()
    if path == "":
        return queryset
    return queryset.filter(**{f"{office_path_field}__startswith": path})


# --- accounts -----------------------------------------------------------------------------------


def _key_account_q(prefix: str) -> Q:
    """Accounts above the key-account threshold (converted to kVA with the supply power factor for
    loads sanctioned in kVA), or in an account group."""
    threshold = Decimal(str(regdata.load("customers/key_accounts.toml")["threshold_kw"]))
    power_factor = Decimal(str(regdata.load("customers/supply_types.toml")["power_factor"]))
    return (
        Q(**{f"{prefix}load_unit": "kW", f"{prefix}sanctioned_load__gt": threshold})
        | Q(**{f"{prefix}load_unit": "kVA", f"{prefix}sanctioned_load__gt": threshold / power_factor})
        | Q(**{f"{prefix}group__isnull": False})
    )


def account_rule(user) -> str:
    role = role_of(user)
    if role is None:
        return "none"
    return str(rules()["accounts"].get(role, "none"))


def account_q(user, prefix: str = "") -> Q:
    """The Q selecting the accounts (through `prefix`, e.g. 'account__') the user may see."""
    rule = account_rule(user)
    if rule == "all":
        return EVERYTHING
    if rule == "own":
        return Q(**{f"{prefix}consumer__user": user})
    if rule not in ("office", "key_accounts", "routes"):
        return NOTHING
    path = office_path_of(user) or ""
    office = Q(**{f"{prefix}office_path__startswith": path}) if path else EVERYTHING
    if rule == "key_accounts":
        return office & _key_account_q(prefix)
    if rule == "routes":
        beat = _route_codes(user)
        return office & Q(**{f"{prefix}route__in": beat}) if beat else office
    return office


def _route_codes(user) -> list[str]:
    profile = getattr(user, "staff", None)
    return profile.route_codes if profile else []


def scope_accounts(user, queryset: QuerySet, prefix: str = "") -> QuerySet:
    """`queryset` (of accounts, or of records with an account at `prefix`) cut to the user's scope."""
    if account_rule(user) == "none":
        return queryset.none()
    return queryset.filter(account_q(user, prefix))


def account_in_scope(user, account) -> bool:
    return scope_accounts(user, type(account).objects.filter(pk=account.pk)).exists()


# --- who may do what ----------------------------------------------------------------------------


def collect_channels(user) -> frozenset[str]:
    role = role_of(user)
    return frozenset(rules()["collect"].get(role, ())) if role else frozenset()


def check_collect(user, *, channel: str) -> None:
    """Refuse a collector whose role may not take money on `channel` (the [collect] table)."""
    allowed = collect_channels(user)
    if channel not in allowed:
        raise Forbidden(
            f"your role may not collect payments on the {channel} channel",
            code="role_not_allowed",
            details={"channel": channel, "allowed": sorted(allowed)},
        )


def cash_limited(user) -> bool:
    return role_of(user) in rules()["cash_limit"]["roles"]


def collect_scope(channel: str) -> str:
    """'utility' or 'office': where a collector on `channel` may take money for an account."""
    table = rules()["collect_scope"]
    return str(table.get(channel, table["counter"]))


def may_collect_for(user, account, *, channel: str) -> bool:
    """Counter-like channels follow the counter setting; a field agent only its section's accounts
    (and, when the agent has a beat, only those on its routes)."""
    if role_of(user) == Role.ADMIN:
        return True
    if collect_scope(channel) == "utility":
        return True
    return account_in_scope(user, account)


def assignable_role(role: str | None) -> bool:
    return role in rules()["requests"]["assignable_roles"]


def scope_by_creator(user, queryset: QuerySet, user_field: str) -> QuerySet:
    """Records a staff member made (an import, its error report): visible to staff whose office covers
    the creator's office, and to admin and utility-wide staff (a creator with no office is theirs only)."""
    queryset = queryset.all()
    path = office_path_of(user)
    if path is None or role_of(user) == Role.CONSUMER:
        return queryset.none()
    if path == "":
        return queryset
    return queryset.filter(**{f"{user_field}__staff__office__path__startswith": path})


def staff_in_scope(user, queryset: QuerySet, user_field: str = "") -> QuerySet:
    """Users (or records naming one at `user_field`) who are staff of an office within the user's scope."""
    prefix = f"{user_field}__" if user_field else ""
    return scope_offices(user, queryset.filter(**{f"{prefix}staff__isnull": False}), f"{prefix}staff__office__path")


def record_q(user, *, account_prefix: str, office_path_field: str) -> Q:
    """Records that belong to an office and may name an account (requests, payments): office staff see
    their office subtree, the key-account manager the records of its key accounts, a consumer those of
    its own accounts."""
    rule = account_rule(user)
    if rule in ("all", "office", "routes"):  # a field agent's beat narrows accounts, not office records
        return office_q(user, office_path_field)
    if rule in ("key_accounts", "own"):
        return account_q(user, account_prefix)
    return NOTHING


def scope_records(user, queryset: QuerySet, *, account_prefix: str, office_path_field: str) -> QuerySet:
    return queryset.filter(record_q(user, account_prefix=account_prefix, office_path_field=office_path_field))
