"""Errors as answers: {code, message, details} on the API for every status (404, 405 and 500 included),
a proper 4xx page for a DomainError on an HTML page; the input boundary checked once per request.

`urja.urls` names handler400/403/404/500 here; BoundaryMiddleware sits in settings.MIDDLEWARE.
"""

import json
import logging

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string

from .boundary import request_problem
from .errors import DomainError

API_PREFIX = "/api/"
log = logging.getLogger(__name__)

# What a bare status means, for answers no handler of ours wrote (Django's own 404/405/413 …).
STATUS_CODES = {
    400: ("bad_request", "the request could not be read"),
    403: ("forbidden", "not allowed"),
    404: ("not_found", "not found"),
    405: ("method_not_allowed", "this method is not allowed here"),
    413: ("request_too_large", "the request is too large"),
    500: ("server_error", "an unexpected error occurred; it has been logged"),
}
TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict", 422: "Invalid input"}


def is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def api_error(status: int, code: str | None = None, message: str | None = None, details=None) -> JsonResponse:
    default_code, default_message = STATUS_CODES.get(status, ("error", "request failed"))
    body = {"code": code or default_code, "message": message or default_message, "details": details or {}}
    return JsonResponse(body, status=status)


def error_page(request, *, status: int, message: str, code: str = "") -> HttpResponse:
    context = {"title": TITLES.get(status, "Request refused"), "message": message, "code": code, "status": status}
    return render(request, "errors/error.html", context, status=status)


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


class BoundaryMiddleware:
    """1. Refuses a request whose path, query or form fields carry control characters or over-long
    values (JSON bodies: core.boundary's ninja parser) — 422 on the API, a 400 page elsewhere.
    2. A DomainError escaping an HTML view becomes its 4xx page, not a 500.
    3. Any API error answer not already {code, message, details} (ninja's 405, Django's 404/413)
    is rewritten to it, headers such as Allow kept."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            problem = request_problem(request)
        except Exception:  # an unreadable body (too large, broken multipart): Django answers it below
            problem = None
        if problem:
            if is_api(request):
                return api_error(422, "invalid_text", problem)
            return error_page(request, status=400, message=problem, code="invalid_text")
        response = self.get_response(request)
        if is_api(request) and response.status_code >= 400 and not _is_json(response):
            rewritten = api_error(response.status_code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    rewritten[header] = response[header]
            return rewritten
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, DomainError) and not is_api(request):
            status = exception.status if 400 <= exception.status < 500 else 400
            return error_page(request, status=status, message=exception.message, code=exception.code)
        return None


def bad_request(request, exception=None):
    if is_api(request):
        return api_error(400)
    return error_page(request, status=400, message="The request could not be read.", code="bad_request")


def permission_denied(request, exception=None):
    if is_api(request):
        return api_error(403, message=str(exception) if exception and str(exception) else None)
    return error_page(
        request, status=403, message=str(exception) or "You are not allowed to do this.", code="forbidden"
    )


def page_not_found(request, exception=None):
    if is_api(request):
        return api_error(404, message=f"no API operation at {request.path}")
    return error_page(request, status=404, message="There is no page at this address.", code="not_found")


def server_error(request):
    if is_api(request):
        return api_error(500)
    try:
        return HttpResponse(render_to_string("errors/500.html"), status=500)
    except Exception:  # the template layer itself failing must not hide the 500
        return HttpResponse(json.dumps(STATUS_CODES[500][1]), status=500, content_type="text/plain")
