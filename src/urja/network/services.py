"""Network services: creating offices keeps the materialised path right."""

from django.db import transaction

from urja.core.errors import DomainError

from .models import LEVEL_ORDER, Office


@transaction.atomic
def create_office(*, code: str, name: str, level: str, parent: Office | None = None, **extra) -> Office:
    if level not in LEVEL_ORDER:
        raise DomainError(f"unknown office level {level!r}", code="unknown_office_level")
    if parent is not None and LEVEL_ORDER.index(parent.level) >= LEVEL_ORDER.index(level):
        raise DomainError(f"a {level} cannot sit under a {parent.level}", code="bad_office_hierarchy")
    office = Office.objects.create(code=code, name=name, level=level, parent=parent, **extra)
    office.path = f"{parent.path if parent else '/'}{office.pk}/"
    office.save(update_fields=["path"])
    return office
