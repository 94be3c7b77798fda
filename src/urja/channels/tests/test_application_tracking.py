"""A new-connection application tracked over SMS pull and WhatsApp (`STATUS <application no.>` from the
mobile given on it): the stage in the sender's language; a wrong mobile or an unknown number gets the
connections app's refusal in that language, the same for both, nothing disclosed."""

import pytest

from urja.channels.models import InboundMessage
from urja.channels.tests.test_webhooks import last_reply, notification, post, secrets, sms, text  # noqa: F401
from urja.connections.tests.conftest import apply, engineer, loaded, owner_documents  # noqa: F401 (fixtures)


def answered(message_id: str) -> InboundMessage:
    return InboundMessage.objects.get(message_id=message_id)


@pytest.mark.parametrize(
    ("language", "stage", "refusal"),
    [
        ("en", "Registered", "No application with this number and mobile."),
        ("hi", "पंजीकृत", "इस संख्या और मोबाइल का कोई आवेदन नहीं मिला।"),
        ("or", "ପଞ୍ଜିକୃତ", "ଏହି ନମ୍ବର ଓ ମୋବାଇଲ୍ ସହ କୌଣସି ଆବେଦନ ମିଳିଲା ନାହିଁ।"),
    ],
)
def test_sms_status_of_an_application_in_the_applicants_language(client, apply, language, stage, refusal):  # noqa: F811
    app = apply(preferred_language=language)  # the applicant's mobile: 9861012345
    sms(client, **{"from": "9861012345", "text": f"STATUS {app.number}", "id": f"t-{language}-1"})
    reply = answered(f"t-{language}-1")
    assert reply.intent == "status" and app.number in reply.reply and stage in reply.reply
    assert last_reply("+919861012345").language == language
    # a stranger asking about this application and the applicant asking about an unknown one: alike
    sms(client, **{"from": "9437099999", "text": f"STATUS {app.number}", "id": f"t-{language}-2"})
    sms(client, **{"from": "9861012345", "text": "STATUS NC2600000000", "id": f"t-{language}-3"})
    stranger, unknown = answered(f"t-{language}-2").reply, answered(f"t-{language}-3").reply
    assert refusal in unknown and stage not in unknown
    if language == "en":  # the stranger has no consumer and wrote in Latin script: English
        assert stranger == unknown and app.number not in stranger


def test_whatsapp_status_in_odia_for_an_odia_applicant(client, apply):  # noqa: F811
    app = apply(preferred_language="or")
    post(client, notification([text(f"ସ୍ଥିତି {app.number}", sender="919861012345")]))
    reply = last_reply("+919861012345")
    assert reply.channel == "whatsapp" and reply.language == "or"
    assert "ନୂଆ ସଂଯୋଗ ଆବେଦନ" in reply.body and "ପଞ୍ଜିକୃତ" in reply.body
    post(client, notification([text("ସ୍ଥିତି NC2600000000", sender="919861012345")]))
    assert "ଏହି ନମ୍ବର ଓ ମୋବାଇଲ୍ ସହ କୌଣସି ଆବେଦନ ମିଳିଲା ନାହିଁ।" in last_reply("+919861012345").body
