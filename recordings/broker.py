"""What of the work after calls waits in the broker: the sweep of stalled work asks before queueing
a recording again, so that one merely waiting its turn behind a backlog is in line once.

Celery's messages on Redis (kombu's transport) wait in a list named after their queue; a worker
that has taken one and not yet finished it (the tasks here are acknowledged late) keeps it in the
`unacked` hash until it is done, and kombu puts it back in its list if that worker is lost.
"""

import base64
import json
import logging

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

UNACKED_KEY = "unacked"  # kombu.transport.redis.Channel.unacked_key


def tasks_waiting(*, task: str, queue: str, argument: str) -> set | None:
    """The values of the keyword `argument` of every `task` message waiting in `queue` or taken by a
    worker and not yet done. None when the broker cannot be read (the caller then assumes all waits)."""
    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=5, socket_connect_timeout=2)
    except ValueError as error:  # not a Redis broker: nothing to read
        logger.warning("the broker's queue %s cannot be read: %r", queue, error)
        return None
    try:
        queued = client.lrange(queue, 0, -1)
        taken = client.hvals(UNACKED_KEY)  # each [message, exchange, routing key]
    except redis.RedisError as error:
        logger.warning("the broker's queue %s could not be read: %r", queue, error)
        return None
    finally:
        client.close()
    values = set()
    for message, is_taken in [*((message, False) for message in queued), *((entry, True) for entry in taken)]:
        try:
            found = _argument_of(
                json.loads(message)[0] if is_taken else message, task=task, argument=argument
            )
        except (ValueError, KeyError, TypeError, IndexError):  # not a Celery message of ours
            continue
        if found is not None:
            values.add(found)
    return values


def _argument_of(message: bytes | str | dict, *, task: str, argument: str):
    if not isinstance(message, dict):
        message = json.loads(message)
    if message["headers"].get("task") != task:
        return None
    body = message["body"]
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    _, kwargs, _ = json.loads(body)  # Celery's message protocol 2: [args, kwargs, embed]
    return kwargs.get(argument)
