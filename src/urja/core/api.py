"""The REST API: Django Ninja under /api/v1/, one error format {code, message, details}.

Auth: a bearer token (core.ApiToken) for apps and gateways, or the Django session (with CSRF)
for the web UI. Each app contributes a router from its `api.py`.
"""

from importlib import import_module

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer, django_auth

from .errors import DomainError
from .models import ApiToken, hash_token

API_APPS = [
    "core",
    "network",
    "customers",
    "notifications",
    "metering",
    "tariffs",
    "billing",
    "payments",
    "servicedesk",
    "portal",
    "backoffice",
]


class TokenAuth(HttpBearer):
    def authenticate(self, request, token):
        try:
            record = ApiToken.objects.select_related("user").get(token_hash=hash_token(token), revoked=False)
        except ApiToken.DoesNotExist:
            return None
        if not record.user.is_active:
            return None
        ApiToken.objects.filter(pk=record.pk).update(last_used_at=timezone.now())
        request.user = record.user
        return record.user


AUTH = [TokenAuth(), django_auth]


def error_body(code: str, message: str, details=None) -> dict:
    return {"code": code, "message": message, "details": details if details is not None else {}}


def build_api() -> NinjaAPI:
    api = NinjaAPI(
        title="Urja API",
        version="1",
        description="Customer care and billing for electricity distribution. Errors: {code, message, details}.",
        urls_namespace="api-v1",
        auth=AUTH,
    )

    @api.exception_handler(DomainError)
    def domain_error(request, exc: DomainError):
        return api.create_response(request, error_body(exc.code, exc.message, exc.details), status=exc.status)

    @api.exception_handler(NinjaValidationError)
    def validation_error(request, exc: NinjaValidationError):
        fields = [
            {"field": ".".join(str(p) for p in e.get("loc", [])), "message": e.get("msg", "")} for e in exc.errors
        ]
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "invalid request"
        return api.create_response(request, error_body("validation_error", message, {"fields": fields}), status=422)

    @api.exception_handler(AuthenticationError)
    def auth_error(request, exc):
        return api.create_response(request, error_body("not_authenticated", "authentication required"), status=401)

    @api.exception_handler(PermissionDenied)
    def forbidden(request, exc):
        return api.create_response(request, error_body("forbidden", str(exc) or "not allowed"), status=403)

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return api.create_response(request, error_body("not_found", "not found"), status=404)

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        return api.create_response(request, error_body("http_error", str(exc)), status=exc.status_code)

    for app in API_APPS:
        module = import_module(f"urja.{app}.api")
        router = getattr(module, "router", None)
        if router is not None:
            api.add_router(getattr(module, "PREFIX", f"/{app}"), router)
    return api


api = build_api()
