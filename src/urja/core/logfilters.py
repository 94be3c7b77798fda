"""Quiet logs (issue 15 part 9): a refusal is not an incident.

`ClientErrorsWithoutTraceback` drops the traceback Django's `django.request` logger attaches to a
4xx answer (a PermissionDenied or Http404 raised in a view): the line "Forbidden (Permission
denied): /billing/runs/" stays, the 30-line stack does not. 5xx keep their traceback.
"""

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and 400 <= int(status) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
