"""The REST API: Django Ninja under /api/v1/, one error format {code, message, details}.

Auth: a bearer token (core.ApiToken) for apps and gateways, or the Django session (with CSRF)
for the web UI. Each app contributes a router from its `api.py`.
"""

from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone
from ninja import NinjaAPI, Router, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer, django_auth

from urja.apps_registry import app_modules

from .auth import InvalidToken, authenticate_password, validate_token
from .boundary import parser as boundary_parser
from .errors import DomainError
from .models import ApiToken, hash_token

# last_used_at is a "seen recently" mark for the admin: written at most once a minute per token,
# not on every call (an app posting many requests a second would otherwise write the row each time).
TOKEN_SEEN_RESOLUTION = timedelta(seconds=60)


class TokenAuth(HttpBearer):
    def authenticate(self, request, token):
        try:
            # the staff profile comes along: every API call asks for the caller's role
            record = ApiToken.objects.select_related("user", "user__staff").get(token_hash=hash_token(token))
        except ApiToken.DoesNotExist:
            raise InvalidToken("unknown bearer token; sign in again") from None
        now = timezone.now()
        validate_token(record, now=now)  # revoked, user deactivated, password changed, expired: 401
        if record.last_used_at is None or now - record.last_used_at >= TOKEN_SEEN_RESOLUTION:
            ApiToken.objects.filter(pk=record.pk).update(last_used_at=now)
        request.user = record.user
        return record.user


AUTH = [TokenAuth(), django_auth]


def error_body(code: str, message: str, details=None) -> dict:
    return {"code": code, "message": message, "details": details if details is not None else {}}


auth_router = Router(tags=["auth"])


class TokenRequest(Schema):
    username: str
    password: str
    name: str = "app"


class TokenResponse(Schema):
    token: str
    prefix: str
    role: str | None
    expires_at: datetime


class MeOut(Schema):
    username: str
    role: str | None
    office_code: str | None


class TokenError(Schema):
    code: str
    message: str
    details: dict


@auth_router.post("/tokens", response={201: TokenResponse, 401: TokenError, 429: TokenError}, auth=None)
def issue_token(request, payload: TokenRequest):
    """Exchange staff credentials for a bearer token (field-agent app, integrations). The token expires
    after URJA_API_TOKEN_TTL_HOURS and is revoked when the password changes or the user is deactivated.
    Failed attempts are throttled per username and per client address (data/core/security.toml):
    while locked out, every attempt — the right password included — answers 429 `too_many_attempts`
    with `details.retry_after` (seconds) and a Retry-After header."""
    from .permissions import role_of

    user = authenticate_password(request, username=payload.username, password=payload.password)
    if user is None or role_of(user) is None:
        raise DomainError("wrong username or password", code="invalid_credentials", status=401)
    token, raw = ApiToken.issue(user=user, name=payload.name)
    return 201, {"token": raw, "prefix": token.prefix, "role": role_of(user), "expires_at": token.expires_at}


@auth_router.get("/me", response=MeOut)
def me(request):
    from .permissions import role_of

    user = request.auth
    profile = getattr(user, "staff", None)
    office = profile.office.code if profile and profile.office_id else None
    return {"username": user.get_username(), "role": role_of(user), "office_code": office}


class Error(Schema):
    """Every error answer: a machine-readable code, a message for people, details (fields, limits)."""

    code: str
    message: str
    details: dict


# The 4xx answers every operation may give (documented on each in the OpenAPI), 401 where it needs auth.
DOCUMENTED_ERRORS = {
    400: "Refused by a business rule (code says which)",
    403: "Not allowed for the caller's role",
    404: "No such record (or not in the caller's scope)",
    409: "Conflicts with the record's current state",
    422: "Invalid input: schema, number, date, text or page bounds (code says which)",
}


def _specific_first(pattern) -> tuple:
    """URL order: at each segment a literal before a parameter, so /prepaid/devices is not shadowed by
    /prepaid/{consumer_number} (which answered its POST with 405 whatever the router order)."""
    route = str(getattr(pattern.pattern, "_route", pattern.pattern))
    return tuple(1 if part.startswith("<") else 0 for part in route.split("/"))


class UrjaAPI(NinjaAPI):
    def _get_urls(self):
        return sorted(super()._get_urls(), key=_specific_first)

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        return document_errors(schema)


def document_errors(schema):
    """Adds the Error schema and the common 4xx answers to every operation (one place, not 100)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = Error.model_json_schema(ref_template="#/components/schemas/{model}")
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for operations in schema["paths"].values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            statuses = dict(DOCUMENTED_ERRORS)
            if operation.get("security"):
                statuses[401] = "Not authenticated, or the token expired or was revoked"
            for status, description in sorted(statuses.items()):
                responses.setdefault(status, {"description": description, **ref})
    return schema


def build_api() -> NinjaAPI:
    api = UrjaAPI(
        title="Urja API",
        version="1",
        description="Customer care and billing for electricity distribution. Errors: {code, message, details}.",
        urls_namespace="api-v1",
        auth=AUTH,
        parser=boundary_parser(),  # the text rule over every JSON body (core.boundary)
    )

    @api.exception_handler(DomainError)
    def domain_error(request, exc: DomainError):
        response = api.create_response(request, error_body(exc.code, exc.message, exc.details), status=exc.status)
        for name, value in getattr(exc, "headers", {}).items():  # e.g. Retry-After on too_many_attempts
            response[name] = value
        return response

    @api.exception_handler(NinjaValidationError)
    def validation_error(request, exc: NinjaValidationError):
        fields = [
            {"field": ".".join(str(p) for p in e.get("loc", [])), "message": e.get("msg", "")} for e in exc.errors
        ]
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "invalid request"
        # a boundary rule's own code (invalid_amount, invalid_number, invalid_text …) when it is the only kind
        kinds = {e.get("type", "") for e in exc.errors}
        code = (
            kinds.pop()
            if len(kinds) == 1 and next(iter(kinds)).startswith(("invalid_", "date_"))
            else "validation_error"
        )
        return api.create_response(request, error_body(code, message, {"fields": fields}), status=422)

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
        if isinstance(exc.__cause__, DomainError):  # the body parser's boundary check (control characters)
            return domain_error(request, exc.__cause__)
        return api.create_response(request, error_body("http_error", str(exc)), status=exc.status_code)

    api.add_router("/auth", auth_router)
    for app, module in app_modules("api"):  # every app's api.py, lowest layer first (urja.apps_registry)
        router = getattr(module, "router", None)
        if router is not None:
            api.add_router(getattr(module, "PREFIX", f"/{app}"), router)
    return api


api = build_api()
