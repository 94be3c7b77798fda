"""The portal's sign-in backend: the consumer proves their number by a one-time code (channels.otp),
so nothing here authenticates; it only loads the signed-in user on every request.

Why its own backend: AuthenticationMiddleware loads the user with the backend named in the session,
and every portal page then asks the user's role (core.permissions.role_of → user.staff) before the
scope cut. ModelBackend reads the user and the role in two queries; this reads both in one (the
StaffProfile joined). Listed in settings.AUTHENTICATION_BACKENDS after ModelBackend, so passwords
(staff, the demo `consumer`) still go through ModelBackend."""

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend

PATH = "urja.portal.auth.ConsumerBackend"


class ConsumerBackend(BaseBackend):
    def authenticate(self, request, **credentials):
        return None  # a code is checked by channels.otp; the portal logs the consumer in itself

    def get_user(self, user_id):
        """The user with `user.staff` loaded (None when they have no profile), as
        `select_related("staff")` gives it, by a statement built once (portal.selectors.Statement: the
        ORM compiled this read's 20 columns on every page)."""
        try:
            pk = int(user_id)
        except (TypeError, ValueError):
            return None
        for user, profile in _user_statement().rows([pk]):
            relation = type(user).staff.related  # the reverse one-to-one, cached both ways as the ORM does
            relation.set_cached_value(user, profile)
            if profile is not None:
                relation.field.set_cached_value(profile, user)
            return user if user.is_active else None
        return None


@cache
def _user_statement():
    from urja.core.models import StaffProfile

    from .selectors import Statement

    user = get_user_model()
    return Statement(
        user,
        StaffProfile,
        tables=lambda qn: (
            f"{qn(user._meta.db_table)} a LEFT OUTER JOIN {qn(StaffProfile._meta.db_table)} b ON b.user_id = a.id"
            " WHERE a.id = %s"
        ),
    )
