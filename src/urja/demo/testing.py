"""Factories shared by every app's tests (plain functions; no database state at import)."""

from itertools import count

from django.contrib.auth import get_user_model

from urja.core.models import Role, StaffProfile
from urja.network.models import Office
from urja.network.services import create_office

_seq = count(1)


def office_tree(prefix: str = "T") -> dict[str, Office]:
    """utility → circle → two divisions → a sub-division and a section under each."""
    n = next(_seq)
    root = create_office(code=f"{prefix}U{n}", name="Test Utility", level="utility")
    circle = create_office(code=f"{prefix}C{n}", name="Balasore Circle", level="circle", parent=root)
    offices = {"utility": root, "circle": circle}
    for i, name in enumerate(["Balasore Electrical Division", "Bhadrak North Division"], start=1):
        division = create_office(code=f"{prefix}D{n}{i}", name=name, level="division", parent=circle)
        sub = create_office(code=f"{prefix}S{n}{i}", name=f"{name} Sub-division", level="subdivision", parent=division)
        section = create_office(code=f"{prefix}X{n}{i}", name=f"{name} Section", level="section", parent=sub)
        offices[f"division{i}"], offices[f"subdivision{i}"], offices[f"section{i}"] = division, sub, section
    return offices


def staff_user(role: str, office: Office | None, username: str | None = None, password: str = "pass12345"):
    User = get_user_model()
    username = username or f"{role}{next(_seq)}"
    user = User.objects.create_user(
        username=username, password=password, is_staff=role == Role.ADMIN, is_superuser=role == Role.ADMIN
    )
    StaffProfile.objects.create(user=user, role=role, office=office)
    return user


def domestic_account(
    section: Office,
    *,
    name: str = "Sunita Behera",
    mobile: str = "9437012345",
    load: str = "2",
    supply_type: str = "lt_1ph",
    unit: str = "kW",
    **extra,
):
    from urja.customers import services
    from urja.customers.services import ContactInput

    consumer = services.register_consumer(
        actor=None, channel="system", name=name, contacts=[ContactInput("mobile", mobile, True)] if mobile else []
    )
    extra.setdefault("category", "domestic")
    return services.open_account(
        actor=None,
        channel="system",
        consumer=consumer,
        section=section,
        premises_address="Plot 12, Station Road, Balasore 756001",
        supply_type=supply_type,
        sanctioned_load=load,
        load_unit=unit,
        **extra,
    )
