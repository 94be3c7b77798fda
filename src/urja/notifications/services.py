"""Notifications: the one way every part of Urja talks to consumers and staff.

    notify(event="bill.issued", consumer=consumer, context={...}, idempotency_key="bill:123")

renders the event's template in the consumer's language and queues one outbox message per
channel; sending is a task enqueued on commit. (Interface fixed; implementation in progress.)
"""
