"""IDOR suite (issue 11, part 1): every API operation and every page that takes an object id or a
consumer number, for every demo role, against an in-scope, an out-of-scope and a nonexistent record.

The rule: out of scope answers byte for byte like nonexistent (status, and body once the id itself is
masked); an in-scope record is served (or refused by role, the same for all three). The API
operations come from the OpenAPI schema (path parameters) plus the operations that carry an id in
their body; the pages from the URL patterns. A parameter the suite does not know makes it fail, so
a new endpoint cannot slip past it. Run: pytest tests/test_idor.py (prints the probe counts).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from itertools import count

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from urja.core.models import ApiToken, Role, StaffProfile
from urja.demo import testing
from urja.demo.staff import LOGINS

pytestmark = pytest.mark.django_db(transaction=False)

_keys = count(1)


# --- the world: two divisions, one record of each kind on each side ----------------------------------


@dataclass
class Side:
    """The records of one division (in scope for its staff, out of scope for the other's)."""

    account: object = None
    key_account: object = None
    values: dict = field(default_factory=dict)


def _metered(section, tag: str, mobile: str):
    """An account with a meter and six months of readings (the billing tests' factory)."""
    from urja.billing.tests.conftest import metered_account, steady
    from urja.metering.models import Installation

    account = metered_account(section, readings=steady(250), mobile=mobile, name=f"Consumer {tag}")
    return account, Installation.objects.get(account=account).meter


def build_world():
    """Offices, one staff member per demo role in division 1 (field agent at its section), a consumer
    login owning the division-1 account, and each kind of record on both sides."""
    from urja.billing import services as billing
    from urja.billing.models import Bill
    from urja.channels.models import InboundMessage
    from urja.connections import changes as connection_changes
    from urja.connections import services as connections
    from urja.connections.models import Order as ConnectionOrder
    from urja.customers.models import Account, AccountGroup
    from urja.metering.models import ImportBatch as MeterImport
    from urja.metering.models import Reading
    from urja.network.models import Feeder
    from urja.notifications.models import OutboxMessage
    from urja.outreach import services as outreach
    from urja.payments import group as group_payments
    from urja.payments import services as payments
    from urja.payments.models import ImportBatch as PaymentImport
    from urja.servicedesk import catalogue
    from urja.servicedesk import services as servicedesk
    from urja.tariffs import services as tariffs

    tariffs.load_all()
    catalogue.load_file("servicedesk/oerc_sop.toml")
    offices = testing.office_tree("I")
    sides = {1: Side(), 2: Side()}
    staff = {}
    for n, side in sides.items():
        section, division = offices[f"section{n}"], offices[f"division{n}"]
        account, meter = _metered(section, f"{n}A", f"94371000{n}1")
        side.account = account
        side.key_account = testing.domestic_account(
            section, name=f"Steel Works {n}", mobile=f"94371000{n}2", load="150", unit="kVA", supply_type="ht",
            category="industrial", sub_category="large",
        )  # fmt: skip
        cashier = testing.staff_user("cre", division, username=f"cashier{n}")
        officer = testing.staff_user("billing_officer", division, username=f"officer{n}")
        manager = testing.staff_user("manager", division, username=f"mgr{n}")
        agent = testing.staff_user("field_agent", section, username=f"fieldagent{n}")
        staff[n] = {"cashier": cashier, "officer": officer, "manager": manager, "agent": agent}
        session = payments.open_session(actor=cashier, opening_balance="0")
        payment = payments.take_payment(
            actor=cashier, channel="counter", consumer_number=account.consumer_number, amount="100",
            idempotency_key=f"idor-{n}",
        )  # fmt: skip
        feeder = Feeder.objects.create(code=f"IF{n}", name=f"Feeder {n}", office=section)
        outage = servicedesk.declare_outage(
            actor=testing.staff_user("engineer", division), channel="api", kind="unplanned", reason="x", feeder=feeder
        )
        request = servicedesk.register_request(
            actor=cashier, channel="care_centre", type_code="meter_faulty", subtype_code="meter_stuck",
            account=account,
        ).request  # fmt: skip
        application = connections.register_application(
            actor=cashier,
            channel="care_centre",
            name=account.consumer.name,
            mobile=f"94371000{n}4",
            applicant_type="owner",
            premises_address="Station Road",
            latitude="21.4945",
            longitude="86.9332",
            area_class="municipal",
            section=section,
            supply_type="lt_1ph",
            load="2",
            category="domestic",
            documents=[
                connections.DocumentIn("identity_proof", "pan", "ABCDE1234F"),
                connections.DocumentIn("photograph"),
                connections.DocumentIn("ownership_proof", "sale_deed", "S1"),
            ],
            consumer=account.consumer,
        )
        change = connection_changes.request_change(
            actor=cashier,
            channel="care_centre",
            account=account,
            kind="category_change",
            details={"category": "general_purpose"},
        )
        connection_changes.request_change(
            actor=cashier, channel="care_centre", account=account, kind="temp_disconnection", details={}
        )
        connection_order = ConnectionOrder.objects.get(account=account)
        pay_import = PaymentImport.objects.create(source="SBI", filename="f.csv", sha256="0" * 64, imported_by=officer)
        meter_import = MeterImport.objects.create(
            file_name="r.csv", file_sha256="0" * 64, file_format="csv", imported_by=officer
        )
        job, _ = payments.start_collections_sweep(actor=manager, office_path=division.path)
        prepaid = testing.domestic_account(section, name=f"Prepaid {n}", mobile=f"94371000{n}3", is_prepaid=True)
        group = AccountGroup.objects.create(name=f"Steel Group {n}", kind="industrial")
        Account.objects.filter(pk=side.key_account.pk).update(group=group)
        group_payment = group_payments.take_group_payment(
            actor=officer, group_id=group.pk, amount="50", channel="file", method="bank", idempotency_key=f"gp-{n}",
            reference=f"UTR{n}",
        )  # fmt: skip
        event = outreach.plan_event(
            actor=cashier, channel="api", kind="nishta_camp", office=section, held_on=date(2025, 6, 1), venue="Hall",
            today=date(2025, 6, 2),
        )  # fmt: skip
        issue = outreach.raise_issue(
            actor=cashier, channel="api", event=event, text="x", owner_username=cashier.username
        )
        inbound = InboundMessage.objects.create(
            channel="whatsapp", message_id=f"wamid.IDOR{n}", sender=f"+9194371000{n}9", text="Hi",
            consumer=account.consumer, intent="failed", received_at=timezone.now(),
        )  # fmt: skip
        side.values.update(
            inbound_id=inbound.pk,
            consumer_number=account.consumer_number,
            prepaid_number=prepaid.consumer_number,
            payment_id=payment.pk,
            session_id=session.pk,
            request_number=request.number,
            outage_number=outage.number,
            serial=meter.serial,
            pay_batch=pay_import.pk,
            meter_batch=meter_import.pk,
            consumer_id=account.consumer_id,
            reading_id=Reading.objects.filter(account=account).first().pk,
            receipt=payment.receipt_number,
            feeder=feeder.code,
            job_id=job.pk,
            agent_id=agent.pk,
            outbox_id=OutboxMessage.objects.filter(account=account).first().pk,
            application_number=application.number,
            change_number=change.number,
            order_number=connection_order.number,
            group_id=group.pk,
            group_payment_id=group_payment.pk,
            event_id=event.pk,
            issue_id=issue.pk,
        )
    billing.start_run(run=billing.create_run(cycle="C01", period="2025-06", bill_date=date(2025, 7, 2)))
    for n, side in sides.items():
        bill = Bill.objects.get(account=side.account)
        revision = billing.propose_revision(
            bill=bill, kind="credit_note", amount="10", reason="x", actor=staff[n]["officer"], channel="api"
        )
        side.values.update(bill_number=bill.bill_number, revision_id=revision.pk)
    # a well-formed consumer number (check digit right) that no account has
    gone = testing.domestic_account(offices["section1"], name="Gone", mobile="9437100999")
    missing_number = gone.consumer_number
    gone.delete()
    gone.consumer.delete()
    missing = {
        "consumer_number": missing_number,
        "prepaid_number": missing_number,
        "payment_id": 987654,
        "session_id": 987654,
        "request_number": side.values["request_number"][:-4] + "0000",
        "outage_number": "OUT00000000",
        "serial": "NOSUCHMETER",
        "pay_batch": 987654,
        "meter_batch": 987654,
        "consumer_id": 987654,
        "reading_id": 987654,
        "receipt": "R00000000000",
        "bill_number": side.values["bill_number"][:-4] + "0000",
        "revision_id": 987654,
        "feeder": "NOFEEDER",
        "job_id": 987654,
        "agent_id": 987654,
        "outbox_id": 987654,
        "inbound_id": 987654,
        "application_number": "NC000000000",
        "change_number": "CR000000000",
        "order_number": "DO000000000",
        "group_id": 987654,
        "group_payment_id": 987654,
        "event_id": 987654,
        "issue_id": 987654,
    }
    # the demo roles (demo/staff.py), placed in division 1
    users = {}
    for login in LOGINS:
        if login.username in users or login.username == "mgagent":
            continue
        if login.role == Role.CONSUMER:
            from django.contrib.auth import get_user_model

            user = get_user_model().objects.create_user(username="idor-consumer", password="x-pass-123")
            StaffProfile.objects.create(user=user, role=Role.CONSUMER, office=None)
            consumer = sides[1].account.consumer
            consumer.user = user
            consumer.save(update_fields=["user"])
        elif login.role == Role.ADMIN:
            user = testing.staff_user(Role.ADMIN, None, username="idor-admin")
        else:
            office = offices["section1"] if login.role == Role.FIELD_AGENT else offices["division1"]
            user = testing.staff_user(login.role, office, username=f"idor-{login.username}")
        users[login.username] = user
    return offices, sides, missing, users


# --- which value goes into which parameter ------------------------------------------------------------

# (path regex, parameter) -> kind; the first match wins. None: not an object of a scope (a capability
# such as an order reference or a feedback token, a public directory, a bill run of the whole utility).
PARAM_KINDS: list[tuple[str, str, str | None]] = [
    (r"/connections/applications/", "number", "application_number"),
    (r"/connections/changes/", "number", "change_number"),
    (r"/connections/orders/", "number", "order_number"),
    (r"/servicedesk/outages/", "number", "outage_number"),
    (r"/reports/outages/", "number", "outage_number"),
    (r"/servicedesk/", "number", "request_number"),
    (r"/servicedesk/r/", "number", "request_number"),
    (r"/payments/receipt/", "number", "receipt"),
    (r"/portal/receipts/", "number", "receipt"),
    (r"/portal/complaints/", "number", "request_number"),
    (r"/portal/connections/", "number", "application_number"),
    (r"/payments/imports/", "batch_id", "pay_batch"),
    (r"/metering/imports/", "batch_id", "meter_batch"),
    (r"/prepaid/devices/", "serial", None),  # PAYG devices: covered by payments/tests/test_scope.py
    (r".", "serial", "serial"),
    (r"/prepaid/", "consumer_number", "prepaid_number"),
    (r".", "consumer_number", "consumer_number"),
    (r".", "bill_number", "bill_number"),
    (r".", "payment_id", "payment_id"),
    (r".", "session_id", "session_id"),
    (r".", "consumer_id", "consumer_id"),
    # a KYC document is reached only under its consumer (/customers/consumers/<id>/documents/<id>/): the
    # consumer's scope decides; out of scope = nonexistent proved in customers/tests/test_pages.py
    (r"/customers/consumers/", "document_id", None),
    (r".", "reading_id", "reading_id"),
    (r".", "revision_id", "revision_id"),
    (r"/notifications/outbox/", "pk", "outbox_id"),
    (r"/channels/inbound/", "pk", "inbound_id"),
    (r"/backoffice/groups/", "group_id", "group_id"),
    (r"/payments/groups/", "group_id", "group_id"),
    (r".", "group_payment_id", "group_payment_id"),
    (r"/outreach/", "event_id", "event_id"),
    (r"/outreach/", "issue_id", "issue_id"),
    (r".", "job_id", "job_id"),
    (r"/minigrid/", "customer_id", None),  # a site customer: scoped by site, covered by minigrid/tests
    (r"/minigrid/", "number", None),  # a package change: scoped by site, covered by minigrid/tests
    (r"/metering/work/", "action", None),  # a job name (install, replace …), not a record
    (r".", "command_id", None),  # smart-meter commands: no demo record; scoped in metering/api.py
    (r".", "run_id", None),  # a bill run is the whole utility's cycle; its exceptions are filtered
    (r".", "exception_id", None),
    (r"/billing/runs/", "pk", None),
    (r".", "reference", None),  # an order reference is an unguessable capability
    (r".", "token", None),  # a feedback token is a signed capability
    (r".", "gateway", None),
    (r".", "code", None),  # the office directory is public
    (r".", "applicant_type", None),
    (r"/tariffs/", "pk", None),  # tariff versions are public
    # energy balances by network node and loss inspections: scoped by office in reports.selectors,
    # out of scope = nonexistent proved in reports/tests (test_pages_api, test_losses)
    (r"/reports/", "level", None),
    (r"/reports/", "node_id", None),
    (r"/reports/", "inspection_id", None),
]

# Operations carrying an object id in their body: (method, path, body template, kind). "{v}" is the id.
BODY_PROBES = [
    ("post", "/api/v1/payments/payments", {"consumer_number": "{v}", "amount": "10", "channel": "field_agent"},
     "consumer_number"),
    ("post", "/api/v1/payments/agent/sync", {"payments": [{"consumer_number": "{v}", "amount": "10"}]},
     "consumer_number"),
    ("post", "/api/v1/payments/refunds", {"consumer_number": "{v}", "amount": "10", "reason": "x"},
     "consumer_number"),
    ("post", "/api/v1/payments/prepaid/devices", {"consumer_number": "{v}", "serial": "PG1", "secret_hex": "00" * 16},
     "consumer_number"),
    ("post", "/api/v1/payments/deposits", {"agent_id": "{v}", "amount": "10", "reference": "slip"}, "agent_id"),
    ("post", "/api/v1/servicedesk/requests",
     {"type": "no_power_supply", "subtype": "no_power_supply", "channel": "care_centre", "consumer_number": "{v}"},
     "consumer_number"),
    ("post", "/api/v1/servicedesk/outages", {"kind": "unplanned", "reason": "x", "feeder": "{v}"}, "feeder"),
    ("post", "/api/v1/customers/accounts",
     {"consumer_id": "{v}", "section": "-", "premises_address": "x", "category": "domestic", "supply_type": "lt_1ph",
      "sanctioned_load": "2"}, "consumer_id"),
    ("post", "/api/v1/billing/revisions", {"bill_number": "{v}", "kind": "credit_note", "amount": "1", "reason": "x"},
     "bill_number"),
    ("post", "/api/v1/metering/commands", {"consumer_number": "{v}", "command": "disconnect"}, "consumer_number"),
    ("post", "/api/v1/connections/changes",
     {"consumer_number": "{v}", "kind": "category_change", "details": {"category": "general_purpose"}},
     "consumer_number"),
]  # fmt: skip

# Deliberate exceptions, with the reason. A counter takes money for any account of the utility
# (data/core/permissions.toml [collect_scope] counter = "utility"): the cashier's form shows another
# office's account — only what a receipt needs (payments/tests/test_scope.py checks what it hides).
ALLOWED = {("get", "/payments/cashier/form/{consumer_number}/"), ("post", "/payments/cashier/form/{consumer_number}/")}


def kind_of(path: str, param: str) -> str | None:
    for pattern, name, kind in PARAM_KINDS:
        if name == param and re.search(pattern, path):
            return kind
    raise AssertionError(f"the IDOR suite does not know parameter {param!r} of {path}: add it to PARAM_KINDS")


def api_operations() -> list[tuple[str, str, list[str]]]:
    from urja.core.api import api

    schema = api.get_openapi_schema()
    ops = []
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            params = [p["name"] for p in op.get("parameters", []) if p.get("in") == "path"]
            if params:
                ops.append((method, path, params))
    return ops


def page_routes() -> list[tuple[str, list[str]]]:
    """HTML pages with path parameters ('/prefix/<param>/...'), the API and the admin excluded."""
    routes = []

    def walk(patterns, prefix):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                if route.startswith(("api/", "admin/")):
                    continue
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern) and "<" in route:
                params = re.findall(r"<(?:\w+:)?(\w+)>", route)
                routes.append(("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route), params))

    walk(get_resolver().url_patterns, "")
    return routes


# --- probing ------------------------------------------------------------------------------------------


def _masked(response, value) -> tuple[int, str]:
    text = response.content.decode(errors="replace")
    # CSRF tokens are masked per response: they differ on every answer whatever the record
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", text)
    text = re.sub(r'"X-CSRFToken": "[^"]*"', "", text)
    for form in {str(value), str(value).upper(), str(value).lower()}:
        # the id as a token of its own (a small numeric id must not mask 'utf-8' or every digit)
        text = re.sub(rf"(?<![\w.-]){re.escape(form)}(?![\w.-])", "<ID>", text)
    return response.status_code, text


@dataclass
class Tally:
    probes: int = 0
    failures: list = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        self.probes += 1
        if not ok:
            self.failures.append(what)


def _fill(template, value):
    return json.loads(json.dumps(template).replace('"{v}"', json.dumps(value)).replace("{v}", str(value)))


def run_suite() -> Tally:
    _offices, sides, missing, users = build_world()
    tally = Tally()
    api_headers, page_clients = {}, {}
    for name, user in users.items():
        _, raw = ApiToken.issue(user=user, name="idor")
        api_headers[name] = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
        page_clients[name] = Client()
        page_clients[name].force_login(user)
    api_headers["anonymous"], page_clients["anonymous"] = {}, Client()
    client = Client()

    def outside(role_name: str, kind: str) -> list:
        """Out-of-scope values of `kind` for a login: the other division's (none for admin); for the
        key-account manager also its own division's domestic account (it is not a key account)."""
        if role_name == "admin":
            return []
        values = [sides[2].values[kind]]
        if role_name == "kam" and kind == "consumer_number":
            values.append(sides[1].values[kind])
        return values

    def inside(role_name: str, kind: str):
        if role_name == "kam":
            return sides[1].key_account.consumer_number if kind == "consumer_number" else None
        if role_name == "anonymous":
            return None
        if role_name == "consumer" and kind == "prepaid_number":
            return None  # the consumer login owns the division-1 account, which is not prepaid
        if role_name == "agent" and kind in ("pay_batch", "meter_batch"):
            return None  # the importer sits at the division, above the agent's section
        return sides[1].values[kind]

    def call(method, url, headers, body=None, page=None):
        if page is not None:
            return getattr(page, method)(url)
        if body is None:
            return getattr(client, method)(url, **headers)
        return getattr(client, method)(url, json.dumps(body), content_type="application/json", **headers)

    # API path parameters
    targets = []
    for method, path, params in api_operations():
        kinds = [kind_of(path, p) for p in params]
        if any(k is None for k in kinds) or len(params) != 1:
            continue
        targets.append((method, path, params[0], kinds[0], None))
    for method, path, body, kind in BODY_PROBES:
        targets.append((method, path, None, kind, body))
    roles = [*users, "anonymous"]
    for method, path, param, kind, body in targets:
        for role_name in roles:
            headers = api_headers[role_name]
            key = f"idor{next(_keys)}"

            def probe(value, method=method, path=path, param=param, body=body, headers=headers, key=key):
                url = path.replace("{" + param + "}", str(value)) if param else path
                payload = None
                if body is not None:
                    payload = _fill(body, value)
                    # one key for the pair: neither probe may post, and the answers must not differ by it
                    payload.setdefault("idempotency_key", key)
                    for item in payload.get("payments", []):
                        item["idempotency_key"] = key
                elif method != "get":
                    payload = {}
                return call(method, url, headers, payload)

            none = probe(missing[kind])
            for value in outside(role_name, kind):
                out = probe(value)
                tally.check(
                    _masked(out, value) == _masked(none, missing[kind]),
                    f"{role_name} {method.upper()} {path} [{kind}]: out of scope {out.status_code} "
                    f"{out.content[:160]!r} vs nonexistent {none.status_code} {none.content[:160]!r}",
                )
            mine = inside(role_name, kind)
            if method == "get" and mine is not None and none.status_code == 404:
                served = probe(mine)
                tally.check(
                    served.status_code != 404,
                    f"{role_name} GET {path} [{kind}]: in-scope record answered 404 {served.content[:160]!r}",
                )
    # pages
    for route, params in page_routes():
        kinds = [kind_of(route, p) for p in params]
        if any(k is None for k in kinds) or len(params) != 1:
            continue
        kind = kinds[0]
        for method in ("get", "post"):
            if (method, route) in ALLOWED:
                continue
            for role_name in roles:
                page = page_clients[role_name]
                none = call(method, route.format(**{params[0]: missing[kind]}), {}, page=page)
                for value in outside(role_name, kind):
                    out = call(method, route.format(**{params[0]: value}), {}, page=page)
                    tally.check(
                        _masked(out, value) == _masked(none, missing[kind]),
                        f"{role_name} page {method.upper()} {route} [{kind}]: out of scope {out.status_code} vs "
                        f"nonexistent {none.status_code}",
                    )
                mine = inside(role_name, kind)
                if method == "get" and mine is not None and none.status_code == 404:
                    served = call(method, route.format(**{params[0]: mine}), {}, page=page)
                    tally.check(served.status_code != 404, f"{role_name} page GET {route}: in-scope record is 404")
    return tally


def test_out_of_scope_answers_exactly_like_nonexistent_for_every_endpoint_page_and_role(settings):
    settings.URJA_BACKGROUND_THREADS = False
    tally = run_suite()
    held = tally.probes - len(tally.failures)
    print(f"\nIDOR probes: {tally.probes}, hold: {held}, fail: {len(tally.failures)}")
    assert tally.probes > 500  # the suite really ran over the endpoints, pages and roles
    assert not tally.failures, f"{len(tally.failures)} of {tally.probes} probes fail:\n" + "\n".join(
        tally.failures[:80]
    )


def test_the_suite_knows_every_id_parameter():
    """A new endpoint or page with an unknown path parameter fails here until PARAM_KINDS names it."""
    for _method, path, params in api_operations():
        for param in params:
            kind_of(path, param)
    for route, params in page_routes():
        for param in params:
            kind_of(route, param)
