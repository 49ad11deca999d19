"""Background work queued from request code: Celery tasks sent once the transaction commits."""

import logging
from typing import Any

from celery import Task
from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


def enqueue_on_commit(task: Task, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Send `task(**kwargs)` to the workers after the current transaction commits (in `countdown` s).

    A broker that cannot be reached is logged, never raised: the change is committed, a webhook
    must still get its 200, and the beat sweeps do what a lost timer would have done.
    """

    def send() -> None:
        try:
            task.apply_async(kwargs=kwargs, countdown=countdown)
        except (OperationalError, OSError) as error:
            logger.error("task %s%r not queued: %r", task.name, kwargs, error)

    transaction.on_commit(send)
