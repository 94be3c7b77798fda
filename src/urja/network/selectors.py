"""Read-only queries of the network: the offices a user may choose in a list's office filter."""

from __future__ import annotations

from django.db.models import QuerySet

from urja.core.scope import scope_offices

from .models import Office

FILTER_LEVELS = ("circle", "division", "subdivision", "section")


def offices_in_scope(user, *, levels: tuple[str, ...] = FILTER_LEVELS) -> QuerySet:
    """The user's office and those below it (admin: all), in tree order — the office filter's choices."""
    return scope_offices(user, Office.objects.filter(level__in=levels), "path").order_by("path")
