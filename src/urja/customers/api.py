"""API of customers (mounted under /api/v1/ by core.api)."""

from ninja import Router

router = Router(tags=["customers"])
