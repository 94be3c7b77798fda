from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from urja.apps_registry import URJA_APPS, has_module
from urja.core.api import api
from urja.core.login import LoginView

urlpatterns = [
    # first: the providers' webhooks come in bursts, and the resolver tries the patterns in order
    path("webhooks/", include("urja.channels.webhooks")),  # WhatsApp and SMS pull (issue 13)
    path("", RedirectView.as_view(url="/backoffice/", permanent=False)),
    path("favicon.ico", RedirectView.as_view(url=settings.STATIC_URL + "urja/favicon.svg", permanent=True)),
    path("admin/", admin.site.urls),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", api.urls),
    # each app's pages under /<app>/, for every app of urja.apps_registry that has a urls.py
    *(path(f"{app}/", include(f"urja.{app}.urls")) for app in URJA_APPS if has_module(app, "urls")),
    path("i18n/", include("django.conf.urls.i18n")),
]
# Uploaded files (KYC documents, reading photos) are never served by URL, not even in development:
# only through the scoped views of the app that owns them (out of scope answers like nonexistent).

# Errors outside the API's own handlers: JSON {code, message, details} under /api/, pages elsewhere.
handler400 = "urja.core.errorpages.bad_request"
handler403 = "urja.core.errorpages.permission_denied"
handler404 = "urja.core.errorpages.page_not_found"
handler500 = "urja.core.errorpages.server_error"
