"""Demo data: WhatsApp and SMS conversations with the bot, answered by the real answering job, so the
back office shows them (Messages received at /channels/inbound/, the replies in the outbox).

    channels.demo.populate(accounts=[...], rng=random.Random(7))

For a few demo consumers with a verified mobile: on WhatsApp a greeting, then "bill"; by SMS
`BILL <consumer number>` and `HELP`; and a greeting from a number linked to no consumer (told how to
link an account). Idempotent: message ids come from the consumer number, so a second call stores
nothing new (a redelivery, as from Meta).
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from urja.customers.selectors import verified_mobile

from .services import bot

CONVERSATIONS = 4
UNLINKED_NUMBER = "+919999900001"  # no demo consumer has it


def populate(*, accounts: Iterable, rng: random.Random) -> dict[str, int]:
    candidates = [a for a in accounts if not getattr(a, "minigrid_site_id", None)]
    rng.shuffle(candidates)
    stored = 0
    talked = 0
    for account in candidates:
        if talked == CONVERSATIONS:
            break
        mobile = verified_mobile(account.consumer)
        if mobile is None:
            continue
        talked += 1
        number = account.consumer_number
        messages = [
            ("whatsapp", f"demo.wa.{number}.1", "Hi"),
            ("whatsapp", f"demo.wa.{number}.2", "bill"),
            ("sms", f"demo.sms.{number}.1", f"BILL {number}"),
            ("sms", f"demo.sms.{number}.2", "HELP"),
        ]
        for channel, message_id, text in messages:
            inbound = bot.Inbound(channel=channel, message_id=message_id, sender=mobile, text=text)
            stored += bot.accept(inbound) is not None
    unlinked = bot.Inbound(channel="whatsapp", message_id="demo.wa.unlinked.1", sender=UNLINKED_NUMBER, text="Hi")
    stored += bot.accept(unlinked) is not None
    answered = bot.answer_all_pending()  # here, what the kicked job answers in a running install
    return {"conversations": talked, "messages": stored, "answered": answered}
