"""The staff login page and the admin login, both through the password throttle (core.auth)."""

import math

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .auth import TooManyAttempts, authenticate_password

TOO_MANY_ATTEMPTS = _(
    "Too many failed login attempts for this username or from this computer. "
    "Login is paused for your security: try again in %(minutes)s minute(s)."
)


class ThrottledLoginMixin:
    """AuthenticationForm.clean with the password throttle in front of authenticate()."""

    retry_after: int | None = None

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = authenticate_password(self.request, username=username, password=password)
            except TooManyAttempts as exc:
                self.retry_after = exc.retry_after
                minutes = max(1, math.ceil(exc.retry_after / 60))
                raise ValidationError(TOO_MANY_ATTEMPTS % {"minutes": minutes}, code="too_many_attempts") from None
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass


class LoginView(auth_views.LoginView):
    """Django's login view; a locked-out attempt answers 429 with Retry-After and the page's message."""

    template_name = "registration/login.html"
    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.retry_after is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response
