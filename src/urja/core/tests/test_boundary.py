"""The input boundary (core/boundary.py): one rule for numbers, dates, pages and text on the API, the
pages and files; every API error {code, message, details}; a DomainError on a page a 4xx page."""

from decimal import Decimal

import pytest
from django.test import RequestFactory

from urja.core import boundary, errorpages
from urja.core.api import api
from urja.core.models import ApiToken
from urja.core.money import MoneyError, parse_amount
from urja.demo.testing import staff_user

OTHER_SCRIPTS = ["१००", "１００", "١٠٠", "১০০", "௧௦௦"]  # Devanagari, fullwidth, Arabic-Indic, Bengali, Tamil
EXPONENTS = ["1e3", "1E3", "1e+3", "1e30", "1.5e2", "-1e3"]


def bearer(user) -> dict:
    _, raw = ApiToken.issue(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


# --- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", OTHER_SCRIPTS)
def test_digits_of_other_scripts_are_refused_with_a_message_saying_so(text):
    with pytest.raises(boundary.InvalidInput) as caught:
        boundary.parse_amount(text)
    assert caught.value.code == "invalid_amount"
    assert "0-9" in caught.value.message
    with pytest.raises(MoneyError, match="0-9"):  # core.money's parse_amount: the same rule
        parse_amount(text)


@pytest.mark.parametrize("text", EXPONENTS)
def test_exponent_forms_are_refused(text):
    with pytest.raises(boundary.InvalidInput) as caught:
        boundary.parse_decimal(text, name="units")
    assert caught.value.code == "invalid_number"
    assert "exponent" in caught.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("100", "100.00"), (" 1,23,456.5 ", "123456.50"), ("123,456.75", "123456.75"), (250, "250.00"), (99.5, "99.50")],
)
def test_plain_amounts_pass(value, expected):
    assert boundary.parse_amount(value) == Decimal(expected)


@pytest.mark.parametrize("value", ["0", "-5", "12.345", "1000000000000", 1e30, float("nan"), True, None, "", "1,2"])
def test_amounts_out_of_bounds_or_malformed_are_refused(value):
    with pytest.raises(boundary.InvalidInput):
        boundary.parse_amount(value)


def test_integers_are_ascii_and_bounded():
    assert boundary.parse_int("42") == 42
    for bad in ["४२", "4.5", "1e2", str(2**63), "-1"]:
        with pytest.raises(boundary.InvalidInput):
            boundary.parse_int(bad)


@pytest.mark.django_db
@pytest.mark.parametrize("units", [*OTHER_SCRIPTS, *EXPONENTS[:4], 1e30, "-5"])
def test_the_public_calculator_refuses_such_units_with_422_not_500(client, units):
    body = {"period_start": "2025-04-01", "period_end": "2025-04-30", "units": units}
    res = client.post("/api/v1/tariffs/calculate", body, content_type="application/json")
    assert res.status_code == 422, res.content
    assert res.json()["code"] == "invalid_number"
    assert set(res.json()) == {"code", "message", "details"}


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [*OTHER_SCRIPTS, "1e3"])
def test_an_online_order_refuses_such_amounts(client, account, amount):
    body = {"consumer_number": account.consumer_number, "amount": amount}
    res = client.post("/api/v1/payments/orders", body, content_type="application/json")
    assert (res.status_code, res.json()["code"]) == (422, "invalid_amount")


@pytest.mark.django_db
def test_sanctioned_load_in_exponent_form_is_refused(client, offices, cre, account):
    res = client.post(
        f"/api/v1/customers/accounts/{account.consumer_number}/load",
        {"sanctioned_load": "5e0"},
        content_type="application/json",
        **bearer(cre),
    )
    assert (res.status_code, res.json()["code"]) == (422, "invalid_number")


# --- dates, pages, windows -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "status"),
    [("offset=-1", 422), ("limit=-1", 422), (f"offset={2**63}", 422), (f"limit={10**30}", 422), ("limit=100000", 200)],
)
def test_pagination_bounds(client, query, status):
    res = client.get(f"/api/v1/network/care-centres?{query}")
    assert res.status_code == status, res.content
    if status == 200:  # a large limit is capped, not refused
        assert len(res.json()["items"]) <= boundary.bounds().max_limit
    else:
        assert res.json()["code"] == "validation_error"


@pytest.mark.django_db
def test_offsets_on_hand_written_lists_are_bounded_too(client, offices):
    user = staff_user("manager", offices["division1"])
    for query in ("offset=-2132934", f"offset={2**63}", "limit=-1"):
        res = client.get(f"/api/v1/servicedesk/requests?{query}", **bearer(user))
        assert res.status_code == 422, (query, res.content)


@pytest.mark.django_db
def test_a_million_day_window_is_refused_on_the_api_and_the_page(client, offices):
    user = staff_user("manager", offices["division1"])
    res = client.get("/api/v1/servicedesk/reports/sla-compliance?days=1000000", **bearer(user))
    assert (res.status_code, res.json()["code"]) == (422, "validation_error")
    client.force_login(user)
    for days in ("1000000", "abc", "१०"):
        page = client.get(f"/servicedesk/compliance/?days={days}")
        assert page.status_code == 422, days  # was a 500 (OverflowError / ValueError)
        assert b"days" in page.content
    assert client.get("/servicedesk/compliance/?days=30").status_code != 422  # a window within bounds passes


@pytest.mark.django_db
def test_a_report_day_in_year_one_is_refused(client, offices):
    user = staff_user("billing_officer", offices["division1"])
    res = client.get("/api/v1/payments/reports/handover?day=0001-01-01", **bearer(user))
    assert (res.status_code, res.json()["code"]) == (422, "date_out_of_range")


def test_moments_in_the_future_or_before_the_account_are_refused():
    from datetime import date, datetime, timedelta

    from django.utils import timezone

    now = timezone.now()
    assert boundary.check_moment(now + timedelta(minutes=1)) == now + timedelta(minutes=1)  # clock skew allowed
    for moment, code in [
        (now + timedelta(days=1), "date_in_future"),
        (datetime(2030, 1, 1, tzinfo=timezone.get_current_timezone()), "date_in_future"),
        (datetime(1900, 1, 1, tzinfo=timezone.get_current_timezone()), "date_too_early"),
    ]:
        with pytest.raises(boundary.InvalidInput) as caught:
            boundary.check_moment(moment)
        assert caught.value.code == code
    with pytest.raises(boundary.InvalidInput) as caught:
        boundary.check_moment(now - timedelta(days=3), not_before=date.today())
    assert caught.value.code == "date_before_account"


# --- text ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_nul_and_control_characters_are_refused_in_query_body_and_path(client, offices):
    user = staff_user("admin", None)
    auth = bearer(user)
    assert client.get("/api/v1/network/offices?level=a%00b", **auth).json()["code"] == "invalid_text"
    res = client.post(
        "/api/v1/customers/consumers", {"name": "Sunita\x00Behera"}, content_type="application/json", **auth
    )
    assert (res.status_code, res.json()["code"]) == (422, "invalid_text")
    res = client.post("/api/v1/customers/consumers", {"name": "Sunita\x1bB"}, content_type="application/json", **auth)
    assert (res.status_code, res.json()["code"]) == (422, "invalid_text")
    assert client.get("/api/v1/network/offices/A%00B", **auth).status_code == 422
    lone_surrogate = '{"name": "A\\ud800B"}'  # valid JSON, unstorable in PostgreSQL
    res = client.post("/api/v1/customers/consumers", lone_surrogate, content_type="application/json", **auth)
    assert (res.status_code, res.json()["code"]) == (422, "invalid_text")


@pytest.mark.django_db
def test_text_longer_than_its_column_is_refused(client, offices):
    auth = bearer(staff_user("admin", None))
    res = client.post("/api/v1/customers/consumers", {"name": "N" * 161}, content_type="application/json", **auth)
    assert res.status_code == 422  # Consumer.name is 160 characters
    assert "160" in res.json()["message"]


def test_free_text_keeps_newlines_and_tabs_single_line_text_does_not():
    assert boundary.text_problem("line one\nline two\tend", multiline=True) is None
    assert boundary.text_problem("line one\nline two", multiline=False)
    assert boundary.clean_text("  Sunita  ", max_length=10) == "Sunita"
    with pytest.raises(boundary.InvalidInput):
        boundary.clean_text("a\x00b", multiline=True)


@pytest.mark.django_db
def test_a_form_post_with_a_nul_character_gets_a_400_page(client):
    res = client.post("/login/", {"username": "admin\x00", "password": "x"})
    assert res.status_code == 400
    assert b"control character" in res.content


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_unknown_api_path_and_wrong_method_answer_the_error_format(client):
    res = client.get("/api/v1/no/such/thing")
    assert res.status_code == 404
    assert set(res.json()) == {"code", "message", "details"} and res.json()["code"] == "not_found"
    res = client.delete("/api/v1/network/care-centres")
    assert res.status_code == 405
    assert res.json()["code"] == "method_not_allowed" and "GET" in res["Allow"]


def test_handler500_answers_json_under_api_and_a_page_elsewhere():
    factory = RequestFactory()
    assert errorpages.server_error(factory.get("/api/v1/x"))["Content-Type"] == "application/json"
    page = errorpages.server_error(factory.get("/backoffice/"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_a_domain_error_on_an_html_page_is_a_4xx_page_with_its_message(client, offices):
    client.force_login(staff_user("manager", offices["division1"]))
    res = client.get("/servicedesk/compliance/?days=0")
    assert res.status_code == 422
    assert b"days: must be at least 1" in res.content and b"invalid_number" in res.content


@pytest.mark.django_db
def test_shadowed_routes_are_reachable(client):
    """POST /payments/prepaid/devices and /servicedesk/requests/bulk-assign were answered 405 by the
    GET routes /prepaid/{consumer_number} and /requests/{number} declared before them."""
    auth = bearer(staff_user("admin", None))
    for path, body in [
        ("/api/v1/payments/prepaid/devices", {"consumer_number": "X", "serial": "S", "secret_hex": "00"}),
        ("/api/v1/servicedesk/requests/bulk-assign", {"numbers": [], "username": "nobody"}),
    ]:
        res = client.post(path, body, content_type="application/json", **auth)
        assert res.status_code != 405, path
        assert set(res.json()) >= {"code", "message"} or res.status_code < 300


def test_the_openapi_documents_the_error_answers_of_every_operation():
    schema = api.get_openapi_schema(path_prefix="/api/v1/")
    assert set(schema["components"]["schemas"]["Error"]["properties"]) == {"code", "message", "details"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            documented = {int(s) for s in operation["responses"]}
            assert {400, 403, 404, 409, 422} <= documented, (method, path)
            if operation.get("security"):
                assert 401 in documented, (method, path)
