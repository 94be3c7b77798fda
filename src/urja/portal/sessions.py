"""The session engine when Redis is configured (settings.URJA_REDIS_URL): Django's `cached_db` — the
database keeps every session, Redis a copy read first — that keeps signing in and reading sessions
from the database while Redis is unreachable (`cached_db` itself answers a page with an error then: it
writes the copy back after reading the database, and checks new keys in Redis). Deleting stays strict:
a logout that cannot delete the Redis copy fails rather than leave a session that Redis would serve
again when it is back. Only signing in tolerates it: the key it replaces is the browser's anonymous
one (the OTP step's), already deleted from the database and no longer held by the browser. Used for
every session (back office too); it lives here because the portal's pages are the ones measured
(docs/portal.md).

Redis unreachable is `RedisError` (connection refused, the settings' 1 s timeouts); anything else
still raises."""

import logging

from django.contrib.sessions.backends import cached_db
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class SessionStore(cached_db.SessionStore):
    def load(self):
        try:
            return super().load()
        except RedisError:
            logger.warning("session cache unreachable: session read from the database")
            return DatabaseStore.load(self)

    def exists(self, session_key):
        try:
            return super().exists(session_key)
        except RedisError:
            return DatabaseStore.exists(self, session_key)

    def cycle_key(self):
        try:
            super().cycle_key()  # the new key is created and the old one deleted from the database first
        except RedisError:
            logger.warning("session cache unreachable: the replaced key's copy may stay until it expires")
