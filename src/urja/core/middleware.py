"""Response headers every answer carries: the Content-Security-Policy and, for anything personal,
`Cache-Control: no-store` (docs/architecture.md "Security")."""

from django.conf import settings
from django.utils.cache import add_never_cache_headers

# No inline script anywhere (behaviour lives in static/urja/*.js, data-* attributes configure it).
# Inline styles stay allowed: templates use style="" for widths and print layouts, and htmx adds its
# indicator <style>; CSS cannot run code. Images may be data: URIs (QR codes on receipts, Swagger icons).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

API_PREFIX = "/api/"


class SecurityHeadersMiddleware:
    """Adds the CSP to every answer, and `no-store` to API answers and to answers sent with or setting a
    session cookie, as every signed-in user's are (a shared counter PC must not show the previous user's
    bills from its cache or the back button). Static files never reach it (WhiteNoise answers them
    earlier)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        # Anything sent with a session cookie may be personal (a signed-in user, a sign-in in progress).
        # Reading the cookie, not `request.user`: asking the user would load them (a query, and their
        # role) on every answer, also on views that never look at them.
        session = settings.SESSION_COOKIE_NAME
        if session in request.COOKIES or session in response.cookies or request.path.startswith(API_PREFIX):
            add_never_cache_headers(response)
        return response
