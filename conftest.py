"""Shared fixtures: the Redis the suite needs, a real Celery worker, a live ASGI server."""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

from core.processes import RedisUnavailable, redis_while_needed

ROOT = Path(__file__).resolve().parent


def database_url_for_subprocess() -> str:
    """The URL of the database the tests run on, for the processes a test starts."""
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{database['NAME']}"
    credentials = quote(database["USER"] or "")
    if database["PASSWORD"]:
        credentials += ":" + quote(database["PASSWORD"])
    host = f"{credentials}@{database['HOST'] or 'localhost'}:{database['PORT'] or 5432}"
    return f"postgres://{host}/{database['NAME']}"


@pytest.fixture(scope="session", autouse=True)
def redis_server():
    """The Redis behind the channel layer and Celery: the configured one, or the bundled one
    (started for the session and stopped at the end, unless one already answers)."""
    try:
        with redis_while_needed() as url:
            yield url
    except RedisUnavailable as error:
        pytest.exit(str(error), returncode=3)


@pytest.fixture(autouse=True)
def realtime_sent():
    """What a test committed is sent before the next test listens (the outbox sends after commit)."""
    yield
    from core.realtime import flush

    flush()


@pytest.fixture(autouse=True)
def channel_layer_of_live_loops():
    """The process-wide channel layer never stays bound to a dead event loop: a receive still pending
    when a test's loop closed leaves channels_redis's layer refusing every later receive ("Two event
    loops are trying to receive() on one channel layer at once!"). Such a layer is dropped, and the
    next test gets a new one."""
    yield
    from channels.layers import channel_layers

    layer = channel_layers.backends.get("default")
    loop = getattr(layer, "receive_event_loop", None)
    if loop is not None and loop.is_closed():
        del channel_layers.backends["default"]


@pytest.fixture(scope="session", autouse=True)
def celery_test_queue(redis_server):
    """The session's own Celery queue (tests/environment.py names it), purged at the end."""
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    assert queue.startswith("test-"), queue
    yield queue
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(queue, *client.keys(f"{queue}*"), settings.HEALTHZ_CELERY_QUEUE)
    client.close()


@pytest.fixture(scope="session")
def celery_worker_process(redis_server, celery_test_queue, django_db_setup, django_db_blocker):
    """A real `celery worker` process on the suite's broker and test database, for the session."""
    with django_db_blocker.unblock():
        database_url = database_url_for_subprocess()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--queues",
            settings.HEALTHZ_CELERY_QUEUE,
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "REDIS_URL": settings.REDIS_URL},
    )
    from core.tasks import ping

    deadline = time.monotonic() + 30
    while True:
        try:
            ready = ping.apply_async(
                kwargs={"token": "ready"}, queue=settings.HEALTHZ_CELERY_QUEUE, expires=5
            )
            if ready.get(timeout=2) == "ready":
                break
        except Exception:  # noqa: BLE001  (the worker is still starting)
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("the Celery worker did not start")
    yield process
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def fast_passwords(settings):
    """Users made by the dozen (every agent has one) without the cost of hashing real passwords."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def recordings_storage(settings, tmp_path) -> Path:
    """Call recordings stored under tmp_path for the test (the "recordings" storage); its folder."""
    location = tmp_path / "recordings"
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location
