"""Pure generators for demo consumers: names, mobiles, addresses, geo points, load profiles.

No database access here: the builders hand in the organisation as plain `DivisionInfo` data and
get back `ConsumerSpec` records, which the small path feeds to the customer services and the
bulk path turns into rows. Everything is driven by a `random.Random`, so a seed gives the same
demo every time.
"""

import math
import random
from bisect import bisect
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from itertools import accumulate

from urja.core import ids

# Odisha mobile series (BSNL, Jio, Airtel, Vi). Every number prefix + 6 digits is a valid
# Indian mobile number for `phonenumbers` (checked by the tests and at start-up on a sample).
MOBILE_PREFIXES = (
    "9437", "9438", "9439", "9861", "9937", "9938", "9040", "9090", "9776", "9777", "7978", "8249",
    "7008", "6370", "8658", "7750", "9348", "7894", "8280", "9658", "6371", "9692", "8895",
)  # fmt: skip

# How mobile numbers are spread: number k of the demo is the k-th element of a fixed
# pseudo-random permutation of the whole prefix × 10^6 space, so numbers never repeat,
# also across top-up runs (k continues where the last run stopped).
_MOBILE_SPACE = len(MOBILE_PREFIXES) * 1_000_000


@lru_cache(maxsize=1)
def _mobile_multiplier() -> int:
    a = 7_919_317
    while math.gcd(a, _MOBILE_SPACE) != 1:
        a += 2
    return a


def mobile_for(index: int) -> str:
    """The demo's index-th mobile number in E.164 form (distinct for distinct indexes)."""
    j = (_mobile_multiplier() * index + 1_234_567) % _MOBILE_SPACE
    return f"+91{MOBILE_PREFIXES[j // 1_000_000]}{j % 1_000_000:06d}"


def aadhaar_for(rng: random.Random) -> str:
    """A syntactically valid Aadhaar number (12 digits, first 2-9, Verhoeff check digit)."""
    body = str(rng.randint(2, 9)) + f"{rng.randrange(10**10):010d}"
    return body + ids.verhoeff_check_digit(body)


@dataclass(frozen=True)
class Profile:
    """One kind of connection: category, supply type and sanctioned load (validated once)."""

    category: str
    sub_category: str
    supply_type: str
    load: Decimal
    unit: str
    weight: float
    rural_only: bool = False
    urban_only: bool = False
    business: str = ""  # "" person; otherwise the kind of organisation that usually holds it


def _p(cat, sub, supply, loads, unit, weight, **kw) -> list[Profile]:
    loads = loads if isinstance(loads, dict) else dict.fromkeys(loads, 1)
    total = sum(loads.values())
    return [Profile(cat, sub, supply, Decimal(str(ld)), unit, weight * w / total, **kw) for ld, w in loads.items()]


# The mix of a northern-Odisha DISCOM: mostly domestic single phase. Weights are percentages.
PROFILES: tuple[Profile, ...] = tuple(
    _p("domestic", "general", "lt_1ph", {"0.5": 4, "1": 22, "2": 26, "3": 15, "4": 5, "5": 4}, "kW", 74)
    + _p("domestic", "bpl_kutir_jyoti", "lt_1ph", {"0.25": 1, "0.5": 2}, "kW", 7, rural_only=True)
    + _p("domestic", "general", "lt_3ph", {"6": 3, "8": 2, "10": 1}, "kW", 3)
    + _p("general_purpose", "general", "lt_1ph", {"1": 2, "2": 3, "3": 2, "5": 1}, "kW", 6)
    + _p("general_purpose", "general", "lt_3ph", ["6", "10", "15", "25", "40"], "kW", 2.5, business="shop")
    + _p("irrigation", "general", "lt_3ph", {"5.5": 2, "7.5": 3, "10": 1}, "kW", 3, rural_only=True)
    + _p("irrigation", "general", "lt_1ph", ["2", "3"], "kW", 1.5, rural_only=True)
    + _p("industrial", "small", "lt_3ph", ["10", "20", "35", "50"], "kW", 1.3, business="industry")
    + _p("industrial", "medium", "ht", {"80": 2, "150": 2, "300": 1, "500": 1}, "kVA", 0.3, business="industry")
    + _p("industrial", "large", "ht", ["1500", "3000"], "kVA", 0.05, business="industry")
    + _p("public_lighting", "general", "lt_3ph", ["6", "10"], "kW", 0.3, urban_only=True, business="civic")
    + _p("domestic", "general", "temporary", ["2", "5"], "kW", 0.3)
    + _p("general_purpose", "general", "temporary", ["10", "25"], "kW", 0.15, business="event")
)

LANGUAGES = (("or", 62), ("en", 25), ("hi", 13))
APPLICANT_TYPES = (("owner", 80), ("tenant", 9), ("occupier", 5), ("legal_heir", 4), ("govt_quarter", 2))
STATUSES = (("active", 965), ("temp_disconnected", 25), ("perm_disconnected", 10))
DEITIES = ("Tarini", "Mangala", "Biraja", "Durga", "Samaleswari", "Ugratara", "Kichakeswari", "Jagannath", "Kali")
BUSINESSES = {
    "shop": ("Stores", "Hardware", "Medical Store", "Hotel", "Sweets", "Cloth Store", "Xerox Centre"),
    "industry": ("Rice Mill", "Flour Mill", "Engineering Works", "Steel Fabrication", "Ice Factory", "Agro Industries"),
    "civic": ("Notified Area Council", "Municipality"),
    "event": ("Puja Committee", "Marriage Mandap", "Construction Site"),
}


class Weighted:
    """O(log n) weighted choice with a single rng.random() call."""

    __slots__ = ("cum", "items", "total")

    def __init__(self, pairs):
        pairs = list(pairs)
        self.items = [p[0] for p in pairs]
        self.cum = list(accumulate(p[1] for p in pairs))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random):
        return self.items[bisect(self.cum, rng.random() * self.total)]


@dataclass
class SectionInfo:
    id: int
    code: str
    path: str
    # (feeder id, [DT ids]) of the section's 11 kV feeders, and its HT feeder (no DTs)
    feeders: list[tuple[int, list[int]]] = field(default_factory=list)
    ht_feeder: int | None = None


@dataclass
class PlaceInfo:
    name: str
    pin: str
    lat: float
    lon: float
    area: str
    sections: list[SectionInfo] = field(default_factory=list)


@dataclass
class DivisionInfo:
    id: int
    code: str
    district: str
    places: list[PlaceInfo]
    weight: float = 1.0


@dataclass(slots=True)
class ConsumerSpec:
    index: int
    name: str
    kind: str
    applicant_type: str
    guardian_name: str
    aadhaar: str
    language: str
    mobile: str
    email: str
    whatsapp: bool
    division: DivisionInfo
    section: SectionInfo
    address: str
    pincode: str
    latitude: str
    longitude: str
    area: str
    profile: Profile
    feeder_id: int | None
    transformer_id: int | None
    bill_cycle: str
    route: str
    is_prepaid: bool
    status: str
    connected_on: date


@lru_cache(maxsize=4)
def faker_pools(seed: int) -> dict[str, list[str]]:
    """Pan-Indian names from Faker's en_IN provider (drawn once, then picked from; callers must
    not change the lists)."""
    from faker import Faker

    fake = Faker("en_IN")
    fake.seed_instance(seed)
    pools = {
        "male": sorted({fake.first_name_male() for _ in range(600)}),
        "female": sorted({fake.first_name_female() for _ in range(600)}),
        "last": sorted({fake.last_name() for _ in range(600)}),
    }
    return pools


def _clean(value):
    """Strings without tab, newline, carriage return or backslash (they go into COPY text)."""
    if isinstance(value, str):
        return value.translate(_UNSAFE)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


_UNSAFE = str.maketrans({"\t": " ", "\n": " ", "\r": " ", "\\": "/"})


def _pick(rnd, seq):
    """rng.choice without its overhead (one rng.random() call)."""
    return seq[int(rnd() * len(seq))]


class ConsumerGenerator:
    """Makes `ConsumerSpec`s for a set of divisions from the demo name and place lists.

    `full_aadhaar=False` (the bulk path) draws only the four digits that are stored unmasked.
    """

    def __init__(
        self,
        *,
        divisions: list[DivisionInfo],
        people: dict,
        profiles: list[Profile],
        seed: int,
        today=None,
        full_aadhaar: bool = True,
    ):
        self.people = people = _clean(people)
        self.fk = _clean(faker_pools(seed))
        self.today_ordinal = (today or date.today()).toordinal()
        self.full_aadhaar = full_aadhaar
        self.profiles_urban = Weighted((p, p.weight) for p in profiles if not p.rural_only)
        self.profiles_rural = Weighted((p, p.weight) for p in profiles if not p.urban_only)
        self.languages = Weighted(LANGUAGES)
        self.applicants = Weighted(APPLICANT_TYPES)
        self.statuses = Weighted(STATUSES)
        self.tribal_districts = set(people.get("tribal_districts", []))
        self.streets = tuple(people["streets"])
        self.villages = tuple(people["villages"])
        # (division, place) with the division's weight shared out: the HQ town more often
        # than each village area.
        self.places = Weighted(
            ((d, pl), d.weight * (0.55 if i == 0 else 0.45 / max(len(d.places) - 1, 1)))
            for d in divisions
            for i, pl in enumerate(d.places)
        )

    # -- names -------------------------------------------------------------------------------
    def person_name(self, rng: random.Random, language: str, district: str) -> tuple[str, str, bool]:
        """(name, guardian name, is_female)."""
        rnd = rng.random
        female = rnd() < 0.45
        odia = language == "or" or (language == "en" and rnd() < 0.6)
        ppl = self.people
        if odia:
            first = _pick(rnd, ppl["odia_female"] if female else ppl["odia_male"])
            guardian_first = _pick(rnd, ppl["odia_male"])
            if district in self.tribal_districts and rnd() < 0.3:
                last = _pick(rnd, ppl["tribal_surnames"])
            else:
                last = _pick(rnd, ppl["odia_surnames"])
        else:
            first = _pick(rnd, self.fk["female"] if female else self.fk["male"])
            guardian_first = _pick(rnd, self.fk["male"])
            last = _pick(rnd, self.fk["last"])
        return f"{first} {last}", f"{guardian_first} {last}", female

    def business_name(self, rng: random.Random, kind: str, place: PlaceInfo) -> str:
        rnd = rng.random
        trade = _pick(rnd, BUSINESSES[kind])
        if kind == "civic":
            return f"{place.name} {trade}"
        if rnd() < 0.5:
            return f"Maa {_pick(rnd, DEITIES)} {trade}"
        return f"{_pick(rnd, self.people['odia_surnames'])} {trade}"

    # -- places ------------------------------------------------------------------------------
    def address(self, rng: random.Random, place: PlaceInfo, district: str) -> str:
        rnd = rng.random
        if place.area == "urban":
            return (
                f"Plot No. {int(rnd() * 480) + 1}, {_pick(rnd, self.streets)}, "
                f"{place.name}, Dist: {district}, Odisha - {place.pin}"
            )
        return f"At: {_pick(rnd, self.villages)}, Po: {place.name}, Dist: {district}, Odisha - {place.pin}"

    @staticmethod
    def geo(rng: random.Random, place: PlaceInfo) -> tuple[str, str]:
        rnd = rng.random
        spread = 0.03 if place.area == "urban" else 0.1
        return f"{place.lat + (rnd() - 0.5) * spread:.6f}", f"{place.lon + (rnd() - 0.5) * spread:.6f}"

    # -- one consumer --------------------------------------------------------------------------
    def make(self, rng: random.Random, index: int) -> ConsumerSpec:
        rnd = rng.random
        division, place = self.places.pick(rng)
        section = _pick(rnd, place.sections)
        urban = place.area == "urban"
        profile = (self.profiles_urban if urban else self.profiles_rural).pick(rng)
        language = self.languages.pick(rng)
        if profile.business and rnd() < 0.7:
            name = self.business_name(rng, profile.business, place)
            kind, guardian = "organisation", ""
            applicant = "govt_department" if profile.business == "civic" else _pick(rnd, _ORG_APPLICANTS)
            aadhaar = ""
        else:
            name, guardian, _ = self.person_name(rng, language, division.district)
            kind, applicant = "person", self.applicants.pick(rng)
            aadhaar = ""
            if rnd() < 0.6:
                aadhaar = aadhaar_for(rng) if self.full_aadhaar else f"{int(rnd() * 10000):04d}"
        email = f"{name.split()[0].lower()}.{index}@example.in" if rnd() < 0.2 else ""
        if profile.supply_type in ("ht", "eht"):
            feeder_id, dt_id = section.ht_feeder, None
            cycle, route = "HT", f"{section.code}-HT"
        else:
            if section.feeders:
                feeder_id, dts = _pick(rnd, section.feeders)
                dt_id = _pick(rnd, dts) if dts else None
            else:
                feeder_id = dt_id = None
            r = int(rnd() * 8)
            cycle, route = _CYCLES[r % 4], f"{section.code}-R{r + 1:02d}"
        latitude, longitude = self.geo(rng, place)
        return ConsumerSpec(
            index,
            name,
            kind,
            applicant,
            guardian,
            aadhaar,
            language,
            mobile_for(index),
            email,
            rnd() < 0.4,
            division,
            section,
            self.address(rng, place, division.district),
            place.pin,
            latitude,
            longitude,
            place.area,
            profile,
            feeder_id,
            dt_id,
            cycle,
            route,
            profile.category == "domestic" and urban and rnd() < 0.06,
            self.statuses.pick(rng) if profile.supply_type != "temporary" else "active",
            date.fromordinal(self.today_ordinal - 60 - int(rnd() * 25 * 365)),
        )


_ORG_APPLICANTS = ("partnership", "company", "owner")
_CYCLES = ("C01", "C02", "C03", "C04")
