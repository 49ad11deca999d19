"""Celery's Redis transport, made to outlive a Redis restart.

With kombu 5.7.0, a worker whose connection to Redis is lost while it holds messages it has not
acknowledged yet (the tasks it has taken ahead) stops for good ("Unrecoverable error"): closing the
channel puts those messages back through a connection that is already gone, which raises
AttributeError, not one of the connection errors the worker recovers from (found by
bench/faults.py, `redis_restarted`). Here that putting back is given up instead, and the worker
reconnects. Nothing is lost by it that was not lost already: Redis keeps those messages in its own
index of unacknowledged ones, restored after the visibility timeout, unless it restarted empty.
Every task is written to be run again (a sweep or a lease redoes what a lost task would have done).
"""

import logging

from kombu.transport import redis

logger = logging.getLogger(__name__)


class QoS(redis.QoS):
    def restore_unacked(self, client=None):
        try:
            return super().restore_unacked(client)
        except AttributeError:
            logger.warning(
                "%s unacknowledged task message(s) not put back: the connection to Redis is gone",
                len(self._delivered),
            )
            self._delivered.clear()
            return None


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel
