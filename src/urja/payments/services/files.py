"""Settlement files from banks and collection agencies (the import itself is payments.settlement)."""

from __future__ import annotations

from urja.core.errors import DomainError
from urja.payments.models import (
    ImportBatch,
)


def import_settlement(*, actor, source: str, filename: str, stream, max_report: int = 10_000) -> ImportBatch:
    """Import a bank / collection-agency settlement CSV (see docs/payments.md). Streamed; each row
    posts once (key = source + row key) however often the file is imported; rows that cannot be
    posted are listed in the batch's report with a reason."""
    from urja.payments import settlement

    source = (source or "").strip().upper()
    if not source or len(source) > 40 or not source.replace("-", "").replace("_", "").isalnum():
        raise DomainError("source must be a bank / agency code", code="invalid_source")
    return settlement.run_import(actor=actor, source=source, filename=filename, stream=stream, max_report=max_report)
