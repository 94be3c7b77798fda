"""API of portal (mounted under /api/v1/ by core.api)."""

from ninja import Router

router = Router(tags=["portal"])
