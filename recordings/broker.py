"""What of the work after calls waits in the broker: the sweep of stalled work asks before queueing
a recording again, so that one merely waiting its turn behind a backlog is in line once.

Celery's messages on Redis (kombu's transport) wait in a list named after their queue; a worker
that has taken one and not yet finished it (the tasks here are acknowledged late) keeps it in the
`unacked` hash until it is done, and kombu puts it back in its list if that worker is lost.
"""

import base64
import contextlib
import json
import logging

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

UNACKED_KEY = "unacked"  # kombu.transport.redis.Channel.unacked_key


def tasks_waiting(wanted: dict[str, tuple[str, str]]) -> dict[str, set] | None:
    """For each queue of `wanted` (queue → its task's name and a keyword argument), the values of
    that argument in every message of the task waiting in the queue or taken by a worker and not
    yet done: one read of the broker for them all. None when the broker cannot be read (the caller
    then assumes all waits)."""
    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=5, socket_connect_timeout=2)
    except ValueError as error:  # not a Redis broker: nothing to read
        logger.warning("the broker cannot be read: %r", error)
        return None
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in wanted:
                pipe.lrange(queue, 0, -1)
            pipe.hvals(UNACKED_KEY)  # each [message, exchange, routing key]
            *queued, taken = pipe.execute()
    except redis.RedisError as error:
        logger.warning("the broker could not be read: %r", error)
        return None
    finally:
        client.close()
    taken_messages = []  # a worker's, of any queue: each is told apart by its task's name
    for entry in taken:
        with contextlib.suppress(ValueError, IndexError, TypeError):
            taken_messages.append(json.loads(entry)[0])
    waiting = {}
    for (queue, (task, argument)), messages in zip(wanted.items(), queued, strict=True):
        waiting[queue] = set()
        for message in [*messages, *taken_messages]:
            try:
                found = _argument_of(message, task=task, argument=argument)
            except (ValueError, KeyError, TypeError, IndexError):  # not a Celery message of ours
                continue
            if found is not None:
                waiting[queue].add(found)
    return waiting


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
