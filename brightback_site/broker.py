"""kombu's Redis transport, made to survive Redis going away while a worker holds unacknowledged messages.

When the connection to Redis drops, Celery's consumer first lets go of the transport (its `client`
becomes None), then closes the old channel, and closing a channel gives its unacknowledged messages
back to Redis (`QoS.restore_unacked`). That needs a new Redis client built from the transport's
`client`: an AttributeError, which Celery treats as unrecoverable, and the worker exits for good
("'NoneType' object has no attribute 'hostname'"). A task finishing after the drop acknowledges its
message on the same dead channel, and fails the same way.

Here a channel whose connection is gone says so as a connection error, which kombu and Celery already
handle, and the worker goes on to reconnect. Nothing is lost: those messages stay in Redis's unacked
index, and kombu gives them back after the broker's visibility_timeout; the outbox sweeper re-publishes
their rows much sooner, and every task is idempotent.

Each channel also keeps one Redis client for its commands (every publish, above all): kombu builds a new one
per command, and building one (its table of some 170 response callbacks) cost about as much CPU as the
LPUSH it sends. The client holds no connection of its own: it takes one from the channel's pool per command,
as kombu's fresh ones do, and a new pool (after a fork or a lost connection) gets a new client.

Selected by CELERY_BROKER_TRANSPORT when REDIS_URL is set (brightback_site/settings.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)


class QoS(kombu_redis.QoS):
    def restore_unacked(self, client: Any = None) -> Any:
        try:
            return super().restore_unacked(client)
        except RedisConnectionError as exc:
            logger.warning("Redis is unreachable (%s): %d unacknowledged message(s) stay in Redis and come back "
                           "after the visibility timeout; the outbox sweeper re-publishes their work sooner.",
                           exc, len(self._delivered))
            self._delivered.clear()
            return None


class Channel(kombu_redis.Channel):
    QoS = QoS
    _kept_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        kept = self._kept_client
        if kept is None or kept.connection_pool is not self.pool:
            kept = self._kept_client = self._create_client()
        yield kept

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise RedisConnectionError("the connection to Redis was closed after it was lost")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
