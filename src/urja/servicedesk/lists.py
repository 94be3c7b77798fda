"""Reads behind the service desk's list pages that the selectors do not already give: the compensation
awards of a month within the user's scope, and their summary by division and request type."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from urja.core.scope import scope_records

from .models import CompensationAward


def awards_in_scope(user, *, month: date) -> QuerySet:
    """The awards of `month` on requests the user may see (their account, else the request's office)."""
    qs = CompensationAward.objects.filter(month=month.replace(day=1))
    qs = scope_records(user, qs, account_prefix="account__", office_path_field="request__office_path")
    return qs.select_related("division", "request__request_type", "account__consumer").order_by("-created_at", "-pk")


def summary(awards: QuerySet) -> list[dict[str, Any]]:
    """Count and total by division and request type (the shape of selectors.compensation_report)."""
    rows: dict[tuple, dict[str, Any]] = {}
    for award in awards:
        key = (award.division_id, award.request.type_code)
        row = rows.setdefault(
            key,
            {
                "division": award.division.name if award.division else "",
                "division_code": award.division.code if award.division else "",
                "type": award.request.request_type.type_name,
                "count": 0,
                "amount": Decimal("0.00"),
            },
        )
        row["count"] += 1
        row["amount"] += award.amount
    return sorted(rows.values(), key=lambda r: (r["division"], r["type"]))
