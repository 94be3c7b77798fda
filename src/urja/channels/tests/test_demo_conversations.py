"""channels.demo: the demo's WhatsApp and SMS conversations go through the real bot and its answering
job, so the back office's Messages received and the outbox show them (issue 13 part 7)."""

import random

from urja.channels import demo
from urja.channels.models import InboundMessage
from urja.channels.services import bot
from urja.demo import testing
from urja.notifications.models import OutboxMessage


def test_the_demo_conversations_are_stored_answered_and_replayed_as_nothing(offices, client):
    accounts = [testing.domestic_account(offices["section1"], mobile=f"94370007{i:02d}") for i in range(5)]
    counts = demo.populate(accounts=accounts, rng=random.Random(3))
    assert counts == {"conversations": demo.CONVERSATIONS, "messages": 4 * demo.CONVERSATIONS + 1, "answered": 17}
    intents = dict(InboundMessage.objects.values_list("message_id", "intent"))
    assert not [m for m, intent in intents.items() if intent in ("", bot.FAILED)]  # every one answered
    assert {InboundMessage.objects.get(message_id="demo.wa.unlinked.1").consumer_id} == {None}
    assert OutboxMessage.objects.filter(event="channel.reply").count() == 17  # a reply each, in the outbox
    # visible to the staff who answer them
    client.force_login(testing.staff_user("manager", None))
    page = client.get("/channels/inbound/")
    assert page.status_code == 200 and page.context["page"].paginator.count == 17
    # a second run is a redelivery of the same messages: nothing new
    assert demo.populate(accounts=accounts, rng=random.Random(3)) == {
        "conversations": demo.CONVERSATIONS,
        "messages": 0,
        "answered": 0,
    }
