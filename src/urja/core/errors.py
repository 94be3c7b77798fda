"""Domain errors carry a machine-readable code; the API renders them as {code, message, details}."""

from typing import Any


class DomainError(Exception):
    """A request the business rules refuse. Raised by services; nothing has been changed."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details if details is not None else {}


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class TransitionNotAllowed(Conflict):
    code = "transition_not_allowed"
