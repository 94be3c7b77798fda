"""Issue 15 part 9: quiet logs and the small things a browser asks for — a 403 is one line without
a traceback, a development message's body is never logged, a favicon, API docs without a CDN."""

import logging

import pytest

from urja.demo import testing


@pytest.mark.django_db
def test_a_403_is_logged_without_a_traceback(client, caplog):
    engineer = testing.staff_user("engineer", testing.office_tree()["section1"])
    client.force_login(engineer)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get("/billing/runs/").status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records and all(r.exc_info is None for r in records)


@pytest.mark.django_db
def test_a_development_message_body_is_not_logged(caplog):
    from urja.notifications.channels import DevChannel

    class Message:
        pk, channel, to, event, body = 7, "sms", "+919437012345", "bill_issued", "Your bill of Rs 4,684.74 SECRET"

    with caplog.at_level(logging.DEBUG):
        DevChannel().send(Message())
    assert "SECRET" not in caplog.text and "+919437012345" not in caplog.text


def test_favicon(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("urja/favicon.svg")


def test_api_docs_load_swagger_from_here_not_a_cdn(client, db):
    html = client.get("/api/v1/docs").content.decode()
    assert "swagger-ui-bundle.js" in html
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html
