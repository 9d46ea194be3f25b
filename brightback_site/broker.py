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

Selected by CELERY_BROKER_TRANSPORT when REDIS_URL is set (brightback_site/settings.py).
"""

from __future__ import annotations

import logging
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

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise RedisConnectionError("the connection to Redis was closed after it was lost")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
