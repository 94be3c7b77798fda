"""Offices, care centres, feeders and transformers."""

from ninja import Field, Router, Schema
from ninja.pagination import paginate

from urja.core.errors import NotFound

from .models import CareCentre, DistributionTransformer, Feeder, Office

router = Router(tags=["network"])


class OfficeOut(Schema):
    code: str
    name: str
    level: str
    parent_code: str | None = Field(None, alias="parent.code")
    state: str
    address: str
    phone: str


class CareCentreOut(Schema):
    name: str
    division: str = Field(..., alias="office.name")
    address: str
    officer_in_charge: str
    phone: str
    hours: str


class FeederOut(Schema):
    code: str
    name: str
    office_code: str = Field(..., alias="office.code")
    voltage_kv: float


class TransformerOut(Schema):
    code: str
    feeder_code: str = Field(..., alias="feeder.code")
    capacity_kva: float


@router.get("/offices", response=list[OfficeOut])
@paginate
def list_offices(request, level: str | None = None, parent: str | None = None):
    qs = Office.objects.select_related("parent")
    if level:
        qs = qs.filter(level=level)
    if parent:
        qs = qs.filter(parent__code=parent)
    return qs


@router.get("/offices/{code}", response=OfficeOut)
def get_office(request, code: str):
    office = Office.objects.select_related("parent").filter(code=code).first()
    if office is None:
        raise NotFound(f"unknown office {code!r}", code="unknown_office")
    return office


@router.get("/care-centres", response=list[CareCentreOut], auth=None)
@paginate
def list_care_centres(request, division: str | None = None):
    """Public: where consumers can go (seed 003, Annexure A)."""
    qs = CareCentre.objects.select_related("office").order_by("office__name", "name")
    if division:
        qs = qs.filter(office__code=division)
    return qs


@router.get("/feeders", response=list[FeederOut])
@paginate
def list_feeders(request, office: str | None = None):
    qs = Feeder.objects.select_related("office").order_by("code")
    if office:
        root = Office.objects.filter(code=office).first()
        if root is None:
            raise NotFound(f"unknown office {office!r}", code="unknown_office")
        qs = qs.filter(office__path__startswith=root.path)
    return qs


@router.get("/transformers", response=list[TransformerOut])
@paginate
def list_transformers(request, feeder: str | None = None):
    qs = DistributionTransformer.objects.select_related("feeder").order_by("code")
    if feeder:
        qs = qs.filter(feeder__code=feeder)
    return qs
