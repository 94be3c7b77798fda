"""Demo organisation: utility → circles → the 16 divisions of seed 003 → sub-divisions →
sections, care centres, feeders, distribution transformers and one mini-grid site with its node (the
plant's LT bus and DT: `network.services.create_minigrid_site`).

Every object is looked up by its code first, so building twice changes nothing.
"""

import random
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal

from urja.core import regdata

from .generator import DivisionInfo, PlaceInfo, SectionInfo, _clean

ROMAN = ("I", "II", "III", "IV")
DT_SIZES_KVA = (Decimal("63"), Decimal("100"), Decimal("160"), Decimal("250"))


@dataclass
class Organisation:
    utility: object
    circles: dict = field(default_factory=dict)  # circle code -> Office
    divisions: dict = field(default_factory=dict)  # division code -> Office
    sections: dict = field(default_factory=dict)  # section code -> Office
    infos: list[DivisionInfo] = field(default_factory=list)
    minigrid_site: object = None
    minigrid_section: object = None
    minigrid_place: PlaceInfo | None = None

    def place(self, division_code: str, name: str) -> PlaceInfo:
        info = next(d for d in self.infos if d.code == division_code)
        return next(p for p in info.places if p.name == name)

    def division_info(self, division_code: str) -> DivisionInfo:
        return next(d for d in self.infos if d.code == division_code)


def organisation_data() -> dict:
    return regdata.load("demo/organisation.toml")


def people_data() -> dict:
    return regdata.load("demo/people.toml")


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _office(code: str, *, name: str, level: str, parent, hours: dict, **extra):
    from urja.network.models import Office
    from urja.network.services import create_office

    office = Office.objects.filter(code=code).first()
    if office is not None:
        return office
    return create_office(
        code=code,
        name=name,
        level=level,
        parent=parent,
        state="OD",
        opens=_hhmm(hours["opens"]),
        closes=_hhmm(hours["closes"]),
        workdays=hours["workdays"],
        **extra,
    )


def build_organisation(*, seed: int = 2025) -> Organisation:
    from urja.network.models import CareCentre, DistributionTransformer, Feeder, MiniGridSite
    from urja.network.services import create_minigrid_site, site_transformer

    data = organisation_data()
    hours = data["hours"]
    u = data["utility"]
    utility = _office(
        u["code"], name=u["name"], level="utility", parent=None, hours=hours, address=u["address"], phone=u["phone"]
    )
    org = Organisation(utility=utility)
    for c in data["circle"]:
        org.circles[c["code"]] = _office(f"C-{c['code']}", name=c["name"], level="circle", parent=utility, hours=hours)

    rng = random.Random(f"{seed}:network")
    existing_feeders = {f.code: f for f in Feeder.objects.filter(code__startswith="F-")}
    existing_dts = {d.code: d for d in DistributionTransformer.objects.filter(code__startswith="DT-")}
    new_feeders: list[Feeder] = []
    wanted_dts: list[tuple[str, str, Decimal, float, float]] = []  # (dt code, feeder code, kVA, lat, lon)
    section_feeders: dict[str, tuple[list[tuple[str, list[str]]], str]] = {}

    for d in data["division"]:
        code = d["code"]
        division = _office(
            f"D-{code}",
            name=d["name"],
            level="division",
            parent=org.circles[d["circle"]],
            hours=hours,
            address=d["care_centre"],
            phone="1912",
        )
        org.divisions[code] = division
        CareCentre.objects.get_or_create(
            office=division,
            name=f"{d['charter_name']} Customer Care Centre",
            defaults={
                "address": d["care_centre"],
                "officer_in_charge": d["officer"],
                "phone": "1912 / 1800-345-6718",
                "hours": hours["note"],
            },
        )
        places = [PlaceInfo(_clean(p["name"]), p["pin"], p["lat"], p["lon"], p["area"]) for p in d["places"]]
        # Sub-division I: the headquarters town, split into two sections.
        # Sub-division II: the rural places, one section each.
        hq, rural = places[0], places[1:]
        sub1 = _office(
            f"SD-{code}-1",
            name=f"{hq.name} Electrical Sub-division I",
            level="subdivision",
            parent=division,
            hours=hours,
        )
        layout = [(sub1, hq, f"S-{code}-1{'AB'[i]}", f"{hq.name} Section {ROMAN[i]}") for i in range(2)]
        if rural:
            sub2 = _office(
                f"SD-{code}-2",
                name=f"{rural[0].name} Electrical Sub-division",
                level="subdivision",
                parent=division,
                hours=hours,
            )
            layout += [(sub2, p, f"S-{code}-2{'ABCD'[i]}", f"{p.name} Section") for i, p in enumerate(rural)]
        for sub, place, s_code, s_name in layout:
            section = _office(s_code, name=s_name, level="section", parent=sub, hours=hours)
            org.sections[s_code] = section
            info = SectionInfo(id=section.pk, code=s_code, path=section.path)
            place.sections.append(info)
            feeders = []
            for n in (1, 2):
                f_code = f"F-{s_code}-{n}"
                if f_code not in existing_feeders:
                    new_feeders.append(
                        Feeder(code=f_code, name=f"{place.name} 11 kV Feeder {n}", office=section, voltage_kv=11)
                    )
                dts = []
                for k in (1, 2, 3):
                    dt_code = f"DT-{s_code}-{n}{k}"
                    dts.append(dt_code)
                    spread = 0.015 if place.area == "urban" else 0.05
                    wanted_dts.append(
                        (
                            dt_code,
                            f_code,
                            rng.choice(DT_SIZES_KVA),
                            place.lat + rng.uniform(-spread, spread),
                            place.lon + rng.uniform(-spread, spread),
                        )
                    )
                feeders.append((f_code, dts))
            ht_code = f"F-{s_code}-33"
            if ht_code not in existing_feeders:
                new_feeders.append(
                    Feeder(code=ht_code, name=f"{place.name} 33 kV Feeder", office=section, voltage_kv=33)
                )
            section_feeders[s_code] = (feeders, ht_code)
        org.infos.append(
            DivisionInfo(
                id=division.pk, code=code, district=_clean(d["district"]), places=places, weight=d.get("weight", 1.0)
            )
        )

    if new_feeders:
        Feeder.objects.bulk_create(new_feeders)
    feeder_ids = dict(Feeder.objects.filter(code__startswith="F-").values_list("code", "id"))
    new_dts = [
        DistributionTransformer(
            code=code,
            feeder_id=feeder_ids[f_code],
            capacity_kva=kva,
            latitude=Decimal(f"{lat:.6f}"),
            longitude=Decimal(f"{lon:.6f}"),
        )
        for code, f_code, kva, lat, lon in wanted_dts
        if code not in existing_dts
    ]
    if new_dts:
        DistributionTransformer.objects.bulk_create(new_dts)
    dt_ids = dict(DistributionTransformer.objects.filter(code__startswith="DT-").values_list("code", "id"))
    for info in org.infos:
        for place in info.places:
            for s in place.sections:
                feeders, ht_code = section_feeders[s.code]
                s.feeders = [(feeder_ids[f], [dt_ids[c] for c in dts]) for f, dts in feeders]
                s.ht_feeder = feeder_ids[ht_code]

    mg = data["minigrid"]
    place = org.place(mg["division"], mg["place"])
    section_info = place.sections[0]
    org.minigrid_section = org.sections[section_info.code]
    org.minigrid_place = PlaceInfo(mg["village"], place.pin, mg["lat"], mg["lon"], "rural", [section_info])
    # the site with its node on the network (the plant's LT bus and its DT) from the start, so its accounts
    # can hang on the DT when opened; a site built before sites had nodes gets its node now
    site = MiniGridSite.objects.filter(code=mg["code"]).first()
    if site is None:
        site = create_minigrid_site(
            code=mg["code"],
            name=mg["name"],
            office=org.minigrid_section,
            village=mg["village"],
            district=mg["district"],
            capacity_kw=Decimal(mg["capacity_kw"]),
            storage_kwh=Decimal(mg["storage_kwh"]),
            operator=mg["operator"],
        )
    elif site.transformer_id is None:
        site_transformer(site=site)
        site.refresh_from_db()
    org.minigrid_site = site
    return org
