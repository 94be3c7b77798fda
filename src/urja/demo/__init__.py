"""`urja demo`: a TPNODL-like utility with consumers, staff logins and (through hooks) the data
of the other apps. See docs/demo.md.

Order of work (each step looks for what is already there, so running twice adds nothing):

1. organisation — utility, circles, the 16 divisions of seed 003 with their care centres,
   sub-divisions, sections, feeders, DTs, the mini-grid site (`organisation.py`);
2. staff — one login per role, password ``urja-demo`` (`staff.py`);
2b. history — with ``simulate=N`` (`urja demo` default: DEMO_SIMULATED), N consumers of Balasore
   division live the last 12 months through the services (`simulation.Simulation`: readings,
   bill runs, payments on every channel, prepaid, complaints, collections), once; their accounts
   are left out of the hooks below, and at the end the invariants are checked over the whole demo;
3. special accounts — HT/EHT key accounts, government and industrial groups with many
   connections, the mini-grid's prepaid package accounts, the consumer login's home;
4. consumers — `--consumers N` household and business consumers (the demo's counter, number
   series ``demo:consumers``, remembers how many exist; a larger N tops up);
5. hooks — other apps' demo data (see HOOKS below).

Hook contract
-------------
Each module in HOOKS may define::

    def populate(*, accounts: list[Account], staff: dict[str, User], rng: random.Random) -> None

* ``accounts`` — Account objects (``consumer`` and ``section`` selected) to build data for: on the
  first call every demo account, or an evenly spread sample of at most ``HOOK_SAMPLE`` of them
  plus all special accounts (key accounts, groups, mini-grid, the consumer login's account)
  when there are more; on later runs only the accounts created by that run (same sampling).
  Mini-grid accounts have ``minigrid_site`` set, category "minigrid", ``package_code`` and
  ``is_prepaid``.
* ``staff`` — demo users by role value ("cre", "field_agent", "engineer", "billing_officer",
  "manager", "key_account_manager", "admin", "consumer") and by username ("cre", "agent",
  "mgagent" = the mini-grid's field agent, "billing", "kam", …).
* ``rng`` — a `random.Random` seeded from the demo seed and the hook's name (reproducible).
* Only the arguments the function declares are passed (all for ``**kwargs``); besides the three
  above the demo has ``seed`` (int), ``site`` (the MiniGridSite), ``organisation`` (the
  `Organisation` of this module: offices by code) and ``stdout`` (a callable printing one line).
  A ``staff`` parameter annotated as an iterable/list (not a dict/Mapping) gets the list of the
  distinct demo users instead of the dict.

A hook runs inside its own transaction; it should itself be idempotent. A module that is not
importable yet is skipped cleanly. A hook that raises is rolled back and reported (with
``strict_hooks`` / ``urja demo --strict-hooks`` it aborts the demo, naming the hook).
Each hook's completion is recorded as an audit event (action "demo.hook_done"), so a hook that
appears later still runs once on the next `urja demo` over the existing demo accounts.
"""

import inspect
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module

from django.db import transaction

from .consumers import DEMO_SERIES, BulkWriter, Lookups, create_in_bulk, create_with_services, validated_profiles
from .generator import ConsumerGenerator, ConsumerSpec, Profile
from .organisation import Organisation, build_organisation, organisation_data, people_data
from .staff import DEMO_PASSWORD, LOGINS, ensure_staff

log = logging.getLogger("urja.demo")

# Call sites of other apps' demo data, in this order (metering first: bills need readings;
# payments after billing; notifications last, over what the others produced).
HOOKS: tuple[str, ...] = (
    "urja.metering.demo",
    "urja.billing.demo",
    "urja.payments.demo",
    "urja.servicedesk.demo",
    "urja.connections.demo",  # needs the SoP schedule and the tariff orders (loaded before the hooks)
    "urja.notifications.demo",
    "urja.channels.demo",  # WhatsApp and SMS conversations with the bot (replies in the outbox)
    "urja.reports.demo",  # needs smart meters, bills and the service-desk catalogue
    "urja.minigrid.demo",  # the mini-grid site console: customer IDs, package changes, water, appliances
    "urja.outreach.demo",  # RWA / IWA meetings, a Nishta camp with requests on the spot (needs the catalogue)
)
HOOK_SAMPLE = 5000
# By default this many new consumers go through the services (every rule and audit event per
# consumer, ~15 ms each on SQLite); the rest through the bulk path.
SERVICES_SHARE = 500
# `urja demo` simulates this many consumers for 12 months (the rest are loaded and get the hooks'
# data): enough for every channel and event, small enough for the first `make run`.
DEMO_SIMULATED = 60
# The billing hook bills the last 3 months for every cycle; a simulation covering fewer would have
# the hook bill its consumers for an earlier month after their later bills (arrears out of order).
MIN_SIMULATED_MONTHS = 3
# On PostgreSQL, bulk loads of at least this many consumers use fastload (indexes rebuilt).
FAST_LOAD_MIN = 100_000
# Mobile indexes of the special consumers (random consumers use 1 … N; N < 10 million).
SPECIAL_INDEX = 10_000_000

__all__ = ["DEMO_PASSWORD", "HOOKS", "LOGINS", "DemoResult", "build"]


@dataclass
class DemoResult:
    organisation: Organisation
    staff: dict
    consumers_created: int = 0
    consumers_total: int = 0
    accounts_created: int = 0
    path: str = "services"
    seconds: float = 0.0
    hooks: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    simulation: dict = field(default_factory=dict)  # the simulation's summary (when one ran)
    violations: list = field(default_factory=list)  # invariants broken anywhere in the demo


def demo_consumer_count() -> int:
    from urja.core.models import NumberSeries

    series = NumberSeries.objects.filter(key=DEMO_SERIES).first()
    return series.next_value - 1 if series else 0


def build(
    *,
    consumers: int = 3000,
    seed: int = 2025,
    bulk: bool | None = None,
    chunk: int = 25_000,
    fast: bool | None = None,
    hooks: bool = True,
    strict_hooks: bool = False,
    stdout: Callable[[str], None] = print,
    simulate: int = 0,
    simulate_months: int = 12,
) -> DemoResult:
    """Build (or top up) the demo. `bulk`: True = all new consumers in bulk, False = all through
    the services, None = the first SERVICES_SHARE through the services and the rest in bulk
    (all in bulk from FAST_LOAD_MIN new consumers on).
    `fast`: on PostgreSQL, load the bulk part with `fastload` (None = from FAST_LOAD_MIN on).
    `strict_hooks`: a failing hook raises (else it is reported and the demo goes on); with
    `simulate` it also makes a broken invariant raise.
    `simulate`: consumers (of the `consumers` wanted) that live `simulate_months` months through
    the services before the others are created (once: a later run does not simulate again)."""
    from urja.customers.models import Account

    started = time.perf_counter()
    profiles = validated_profiles()
    with transaction.atomic():
        org = build_organisation(seed=seed)
        staff = ensure_staff()
    simulation = {}
    if simulate and simulate_months < MIN_SIMULATED_MONTHS:
        raise ValueError(f"simulate at least {MIN_SIMULATED_MONTHS} months (the billing hook's months)")
    if simulate and consumers and _simulated_range(org) is None:
        simulation = _simulate(
            org=org, consumers=min(simulate, consumers), months=simulate_months, seed=seed, stdout=stdout
        )
    with transaction.atomic():
        special_ids = _special_accounts(org=org, staff=staff, consumers=consumers, seed=seed, profiles=profiles)
    new_ids = list(special_ids)
    stdout(f"Organisation: {len(org.circles)} circles, {len(org.divisions)} divisions, {len(org.sections)} sections.")

    done = demo_consumer_count()
    wanted = max(0, consumers - done)
    result = DemoResult(organisation=org, staff=staff, consumers_total=max(done, consumers), simulation=simulation)
    generator = ConsumerGenerator(divisions=org.infos, people=people_data(), profiles=profiles, seed=seed)
    # Default: the first SERVICES_SHARE consumers through the services, the rest in bulk; at
    # DISCOM scale (FAST_LOAD_MIN and more) all in bulk.
    if bulk is None:
        via_services = min(wanted, SERVICES_SHARE) if wanted < FAST_LOAD_MIN else 0
    else:
        via_services = 0 if bulk else wanted
    via_bulk = wanted - via_services
    result.path = "+".join(name for name, n in (("services", via_services), ("bulk", via_bulk)) if n) or "none"
    before = Account.objects.count()
    if via_services:
        from urja.core.services import allocate_numbers

        with transaction.atomic():
            first = int(allocate_numbers(key=DEMO_SERIES, template="{seq}", count=via_services)[0])
            rng = random.Random(f"{seed}:{first}")
            specs = [generator.make(rng, first + i) for i in range(via_services)]
            accounts = create_with_services(specs, actor=None, lookups=Lookups())
            new_ids += [a.pk for a in accounts]
    if via_bulk:
        from django.db import connection

        last_id = Account.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        kam_profiles = {p for p in profiles if _needs_kam(p)}
        writer = BulkWriter(lookups_offices=Lookups().offices, kam_threshold_profiles=kam_profiles)
        bulk_generator = ConsumerGenerator(
            divisions=org.infos, people=people_data(), profiles=profiles, seed=seed, full_aadhaar=False
        )
        t0 = time.perf_counter()

        def progress(n: int) -> None:
            if n % (chunk * 8) == 0 or n == via_bulk:
                rate = n / max(time.perf_counter() - t0, 1e-9)
                stdout(f"  … {n:,} of {via_bulk:,} consumers generated ({rate:,.0f}/s)")

        use_fast = connection.vendor == "postgresql" and (fast if fast is not None else via_bulk >= FAST_LOAD_MIN)
        if use_fast:
            from .fastload import fast_load

            result.path += " (PostgreSQL fast load)"
            result.timings = fast_load(
                count=via_bulk,
                generator=bulk_generator,
                seed=seed,
                writer=writer,
                chunk=chunk,
                series_key=DEMO_SERIES,
                progress=progress,
                log=stdout,
            )
        else:
            create_in_bulk(
                count=via_bulk, generator=bulk_generator, seed=seed, writer=writer, chunk=chunk, progress=progress
            )
        new = Account.objects.filter(pk__gt=last_id)
        _audit_bulk_statuses(new)
        new_ids += _spread_ids(new) + list(new.filter(supply_type__in=["ht", "eht"]).values_list("pk", flat=True))
    result.consumers_created = wanted
    result.accounts_created = Account.objects.count() - before + len(special_ids)
    if hooks:
        result.hooks = run_hooks(org=org, staff=staff, new_ids=new_ids, seed=seed, stdout=stdout, strict=strict_hooks)
    if simulation:
        result.violations = _check_whole_demo(seed=seed, stdout=stdout)
        if result.violations and strict_hooks:
            raise RuntimeError(f"demo: {len(result.violations)} invariants broken, e.g. {result.violations[0]}")
    result.seconds = time.perf_counter() - started
    return result


# ---- history: a simulation --------------------------------------------------------------------


def _simulated_range(org: Organisation) -> tuple[int, int] | None:
    """The account ids (first, last) the demo's simulation created, when it ran."""
    from urja.core.models import AuditEvent

    event = (
        AuditEvent.objects.filter(action="demo.simulated", object_type="network.office", object_id=str(org.utility.pk))
        .order_by("-pk")
        .first()
    )
    if event is None:
        return None
    return int(event.changes["first_account"]), int(event.changes["last_account"])


def _simulate(*, org: Organisation, consumers: int, months: int, seed: int, stdout) -> dict:
    """`consumers` new consumers live the last `months` months through the services."""
    from urja.core.services import record_audit

    from .simulation.driver import Simulation

    stdout(f"Simulating {months} months of {consumers} consumers through the services …")
    sim = Simulation(
        months=months, consumers=consumers, seed=seed, faults=False, stdout=stdout, keep_going=True, demo=True
    )
    report = sim.run()
    ids = sorted(c.account.pk for c in sim.connections)
    summary = report.as_dict()
    record_audit(
        actor=None,
        channel="system",
        action="demo.simulated",
        obj=org.utility,
        changes={
            "first_account": ids[0],
            "last_account": ids[-1],
            "months": months,
            "consumers": consumers,
            "violations": summary["violations"],
            "seconds": summary["seconds"],
        },
    )
    stdout(
        f"Simulation: {summary['bills']} bills, {summary['payments']} payments, {summary['readings']} readings, "
        f"{summary['requests']} requests, {summary['violations']} violations in {summary['seconds']}s."
    )
    return summary


def _check_whole_demo(*, seed: int, stdout) -> list[str]:
    """Every invariant of the simulation over everything the demo holds (hooks' data included)."""
    from .simulation.invariants import Checker

    found = Checker(seed=seed).run(month="demo")
    stdout(f"Invariants over the whole demo: {len(found)} violations.")
    for v in found[:20]:
        stdout(f"  VIOLATION {v}")
    return [str(v) for v in found]


def _audit_bulk_statuses(accounts) -> int:
    """The bulk path writes an account's status (temporarily / permanently disconnected) with its
    row; the services path audits it (`change_account_status`). Give each such account the same
    audit event, in bulk, so every status has its audited change (`status_change_audited`)."""
    from urja.core.models import AuditEvent

    batch, done = [], 0
    for pk, status in accounts.exclude(status="active").values_list("pk", "status").iterator():
        batch.append(
            AuditEvent(
                actor=None,
                actor_label="system",
                channel="import",
                action="account.status_changed",
                object_type="customers.account",
                object_id=str(pk),
                changes={"from": "active", "to": status, "reason": "demo data loaded in bulk"},
            )
        )
        if len(batch) >= 5000:
            done += len(AuditEvent.objects.bulk_create(batch))
            batch = []
    done += len(AuditEvent.objects.bulk_create(batch))
    return done


def _needs_kam(profile: Profile) -> bool:
    from .consumers import needs_key_account_manager

    return needs_key_account_manager(profile)


# ---- special accounts -------------------------------------------------------------------------


def _special_accounts(*, org: Organisation, staff: dict, consumers: int, seed: int, profiles) -> list[int]:
    """Key accounts, groups, mini-grid and the consumer login's home. Returns new account ids."""
    from decimal import Decimal

    from urja.customers import services
    from urja.customers.models import Account, AccountGroup, Consumer

    people = people_data()
    generator = ConsumerGenerator(divisions=org.infos, people=people, profiles=profiles, seed=seed)
    lookups = Lookups()
    rng = random.Random(f"{seed}:special")
    created: list[Account] = []

    def spec_at(index: int, division_code: str, place_name: str, profile: Profile, **over) -> ConsumerSpec:
        """A generated consumer moved to a given place and profile."""
        place = org.place(division_code, place_name) if place_name else None
        spec = generator.make(rng, index)
        if place is not None:
            info = org.division_info(division_code)
            spec.division, spec.area, spec.pincode = info, place.area, place.pin
            spec.section = place.sections[0]
            spec.address = generator.address(rng, place, info.district)
            spec.latitude, spec.longitude = generator.geo(rng, place)
        spec.profile = profile
        if profile.supply_type in ("ht", "eht"):
            spec.feeder_id, spec.transformer_id = spec.section.ht_feeder, None
            spec.bill_cycle, spec.route = "HT", f"{spec.section.code}-HT"
        for k, v in over.items():
            setattr(spec, k, v)
        return spec

    # Key accounts (HT / EHT): a key-account manager is assigned by open_account above 100 kW.
    for i, ka in enumerate(people["key_account"]):
        if Consumer.objects.filter(name=ka["name"], kind="organisation").exists():
            continue
        profile = Profile(ka["category"], ka["sub_category"], ka["supply_type"], Decimal(ka["load_kva"]), "kVA", 0)
        spec = spec_at(
            SPECIAL_INDEX + i,
            ka["division"],
            ka["place"],
            profile,
            name=ka["name"],
            kind="organisation",
            applicant_type="company",
            guardian_name="",
            aadhaar="",
            language="en",
            email=f"energy.{i}@example.in",
            status="active",
            is_prepaid=False,
        )
        created += create_with_services([spec], actor=None, lookups=lookups)

    # Groups: a government department or an industry with connections spread over divisions.
    per_group = min(40, max(3, consumers // 500))
    kam = staff.get("key_account_manager")
    for g_index, g in enumerate(people["group"]):
        group = AccountGroup.objects.filter(name=g["name"]).first()
        if group is None:
            group = services.create_group(
                actor=None, channel="import", name=g["name"], kind=g["kind"], key_account_manager=kam
            )
        owner = Consumer.objects.filter(name=g["name"], kind="organisation").first()
        index = SPECIAL_INDEX + 100 + g_index
        if owner is None:
            owner = services.register_consumer(
                actor=None,
                channel="import",
                name=g["name"],
                kind="organisation",
                applicant_type="govt_department" if g["kind"] == "government" else "company",
                preferred_language="en",
            )
            from .generator import mobile_for

            services.add_contact(
                actor=None, channel="import", consumer=owner, kind="mobile", value=mobile_for(index), verified=True
            )
        have = Account.objects.filter(group=group).count()
        specs = []
        for k in range(have, per_group):
            load = rng.choice(g["loads"])
            profile = Profile(g["category"], g.get("sub_category", "general"), g["supply_type"], Decimal(load), "kW", 0)
            spec = spec_at(index, "", "", profile, status="active", is_prepaid=False)
            spec.address = f"{g['site']} No. {k + 1}, {spec.address}"
            specs.append(spec)
        created += create_with_services(specs, actor=None, lookups=lookups, group=group, consumer=owner)

    # The mini-grid: prepaid package accounts in one village (seed 001).
    mg = organisation_data()["minigrid"]
    site = org.minigrid_site
    packages = [(p, p["weight"]) for p in mg["package"]]
    target = min(150, max(5, consumers // 40))
    have = Account.objects.filter(minigrid_site=site).count()
    from .generator import Weighted

    pick = Weighted(packages)
    place = org.minigrid_place
    for k in range(have, target):
        package = pick.pick(rng)
        profile = Profile("minigrid", package["sub_category"], "lt_1ph", Decimal(package["load_kw"]), "kW", 0)
        spec = spec_at(SPECIAL_INDEX + 1000 + k, "", "", profile, status="active", is_prepaid=True)
        spec.division = org.division_info(mg["division"])
        name, guardian, _ = generator.person_name(rng, "or", mg["district"])
        spec.name, spec.guardian_name, spec.language = name, guardian, rng.choice(("or", "or", "or", "hi"))
        spec.kind, spec.applicant_type = "person", "owner"
        spec.section, spec.area, spec.pincode = place.sections[0], "rural", place.pin
        spec.address = f"At: {place.name}, Po: {mg['place']}, Dist: {mg['district']}, Odisha - {place.pin}"
        spec.latitude, spec.longitude = generator.geo(rng, place)
        spec.feeder_id = spec.transformer_id = None
        spec.bill_cycle, spec.route = "MG", f"{site.code}-R01"
        created += create_with_services(
            [spec], actor=None, lookups=lookups, minigrid_site=site, package_code=package["code"]
        )

    # The consumer login's home: a domestic connection in Balasore town, with a verified mobile.
    user = staff["consumer"]
    if not Consumer.objects.filter(user=user).exists():
        login = next(x for x in LOGINS if x.username == "consumer")
        profile = Profile("domestic", "general", "lt_1ph", Decimal("3"), "kW", 0)
        spec = spec_at(
            SPECIAL_INDEX + 5000,
            "BED",
            "Balasore",
            profile,
            name=login.full_name,
            kind="person",
            applicant_type="owner",
            guardian_name="Prafulla Behera",
            aadhaar="",
            language="or",
            mobile=login.mobile,
            email="sunita.behera@example.in",
            status="active",
            is_prepaid=False,
        )
        spec.section = org.place("BED", "Balasore").sections[0]
        # the home must sit on a DT of its own section (customers.check_placement refuses another's)
        dt = next((d for d in lookups.dts.values() if lookups.feeders[d.feeder_id].office_id == spec.section.id), None)
        spec.transformer_id, spec.feeder_id = (dt.pk, dt.feeder_id) if dt else (None, None)
        account = create_with_services([spec], actor=None, lookups=lookups)[0]
        Consumer.objects.filter(pk=account.consumer_id).update(user=user)
        created.append(account)
    return [a.pk for a in created]


# ---- hooks --------------------------------------------------------------------------------------


def _special_ids(org: Organisation) -> list[int]:
    from django.db.models import Q

    from urja.customers.models import Account

    return list(
        Account.objects.filter(office_path__startswith=org.utility.path)
        .filter(
            Q(minigrid_site__isnull=False)
            | Q(group__isnull=False)
            | Q(supply_type__in=["ht", "eht"])
            | Q(consumer__user__isnull=False)
        )
        .values_list("pk", flat=True)
    )


def sample_accounts(ids: list[int], org: Organisation) -> list:
    """The accounts of `ids` (consumer, section and mini-grid site loaded); more than HOOK_SAMPLE
    are thinned to an even spread, keeping every special account among them."""
    from urja.customers.models import Account

    ids = sorted(set(ids))
    if len(ids) > HOOK_SAMPLE:
        special = set(_special_ids(org)).intersection(ids)
        step = len(ids) / HOOK_SAMPLE
        ids = sorted({ids[int(i * step)] for i in range(HOOK_SAMPLE)} | special)
    accounts = []
    for start in range(0, len(ids), 2000):
        batch = ids[start : start + 2000]
        accounts += list(
            Account.objects.filter(pk__in=batch).select_related("consumer", "section", "minigrid_site").order_by("pk")
        )
    return accounts


def _spread_ids(qs) -> list[int]:
    """All ids of `qs` when there are at most 2 × HOOK_SAMPLE, else about HOOK_SAMPLE evenly
    spaced ones (demo ids are nearly dense, so a stride over the id range does)."""
    qs = qs.order_by("pk")
    if qs.count() <= HOOK_SAMPLE * 2:
        return list(qs.values_list("pk", flat=True))
    lo, hi = qs.values_list("pk", flat=True).first(), qs.values_list("pk", flat=True).last()
    step = max(1, (hi - lo) // HOOK_SAMPLE)
    return list(qs.filter(pk__in=[lo + i * step for i in range(HOOK_SAMPLE + 1)]).values_list("pk", flat=True))


def _all_demo_ids(org: Organisation) -> list[int]:
    """Every demo account, or an even spread of them plus all special accounts."""
    from urja.customers.models import Account

    qs = Account.objects.filter(office_path__startswith=org.utility.path)
    ids = _spread_ids(qs)
    return ids if len(ids) == qs.count() else ids + _special_ids(org)


def hook_arguments(populate, **available) -> dict:
    """The arguments `populate` declares, from those the demo has (all of them for **kwargs).

    `staff` goes as the {role/username: User} dict, or as a list of the distinct users when the
    parameter is annotated as an iterable or list (some hooks were written that way)."""
    params = inspect.signature(populate).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in available.items() if k in params or accepts_any}
    if "staff" in params:
        annotation = params["staff"].annotation
        text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
        if annotation is not inspect.Parameter.empty and not any(w in text for w in ("dict", "Mapping")):
            kwargs["staff"] = list({id(u): u for u in available["staff"].values()}.values())
    return kwargs


def run_hooks(
    *, org: Organisation, staff: dict, new_ids: list[int], seed: int, stdout, strict: bool = False
) -> dict[str, str]:
    """Call each app's demo.populate once, then again only for accounts new in later runs.

    A hook that raises has its work rolled back; `strict` re-raises (naming the hook), otherwise
    its outcome starts with "FAILED" and the next hooks still run (it is retried next time)."""
    from urja.core.models import AuditEvent
    from urja.core.services import record_audit

    outcome: dict[str, str] = {}
    for module_name in HOOKS:
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                outcome[module_name] = "not installed"
                continue
            raise
        populate = getattr(module, "populate", None)
        if populate is None:
            outcome[module_name] = "no populate()"
            continue
        done_before = AuditEvent.objects.filter(
            action="demo.hook_done", object_type="network.office", object_id=str(org.utility.pk)
        ).filter(changes__hook=module_name)
        ids = new_ids if done_before.exists() else _all_demo_ids(org)
        simulated = _simulated_range(org)
        if simulated is not None:  # their history is the simulation's
            ids = [i for i in ids if not simulated[0] <= i <= simulated[1]]
        if not ids:
            outcome[module_name] = "up to date"
            continue
        accounts = sample_accounts(ids, org)
        kwargs = hook_arguments(
            populate,
            accounts=accounts,
            staff=staff,
            rng=random.Random(f"{seed}:{module_name}"),
            seed=seed,
            site=org.minigrid_site,
            organisation=org,
            stdout=stdout,
        )
        t0 = time.perf_counter()
        try:
            with transaction.atomic():
                populate(**kwargs)
                record_audit(
                    actor=None,
                    channel="system",
                    action="demo.hook_done",
                    obj=org.utility,
                    changes={"hook": module_name, "accounts": len(accounts)},
                )
        except Exception as exc:
            if strict:
                raise RuntimeError(f"demo hook {module_name}.populate failed: {exc}") from exc
            log.exception("demo hook %s failed", module_name)
            outcome[module_name] = f"FAILED (rolled back; retried on the next run): {type(exc).__name__}: {exc}"
            stdout(f"Hook {module_name}: {outcome[module_name]}")
            continue
        outcome[module_name] = f"done for {len(accounts)} accounts in {time.perf_counter() - t0:.1f}s"
        stdout(f"Hook {module_name}: {outcome[module_name]}")
    return outcome
