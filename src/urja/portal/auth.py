"""The portal's sign-in backend: the consumer proves their number by a one-time code (channels.otp),
so nothing here authenticates; it only loads the signed-in user on every request.

Why its own backend: AuthenticationMiddleware loads the user with the backend named in the session,
and every portal page then asks the user's role (core.permissions.role_of → user.staff) before the
scope cut. ModelBackend reads the user and the role in two queries; this reads both in one (the
StaffProfile joined). Listed in settings.AUTHENTICATION_BACKENDS after ModelBackend, so passwords
(staff, the demo `consumer`) still go through ModelBackend."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend

PATH = "urja.portal.auth.ConsumerBackend"


class ConsumerBackend(BaseBackend):
    def authenticate(self, request, **credentials):
        return None  # a code is checked by channels.otp; the portal logs the consumer in itself

    def get_user(self, user_id):
        user = get_user_model()._default_manager.select_related("staff").filter(pk=user_id).first()
        return user if user is not None and user.is_active else None
