"""The Celery app: broker and results on Redis, settings read from Django's CELERY_* names."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _lower_priority(**_) -> None:
    """Each worker process yields the CPU to the web process (settings.WORKER_NICE)."""
    from django.conf import settings

    if settings.WORKER_NICE > 0:
        os.nice(settings.WORKER_NICE)


@task_prerun.connect
def _about_its_call(kwargs=None, **_) -> None:
    """A task given a call's id logs every line about that call (core.logs)."""
    from core.logs import about_call_now

    about_call_now((kwargs or {}).get("call_id"))


@task_postrun.connect
def _about_no_call(**_) -> None:
    from core.logs import about_no_call

    about_no_call()
