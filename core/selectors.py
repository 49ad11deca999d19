"""Reads that span the whole deployment: the health of the parts every process depends on."""

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import connection

from core.tasks import ping


@dataclass
class Check:
    ok: bool
    latency_ms: float
    error: str = ""


def _timed(probe) -> Check:
    started = time.perf_counter()
    try:
        probe()
    except Exception as error:  # noqa: BLE001  (any failure of a dependency is a failed check)
        return Check(ok=False, latency_ms=_elapsed_ms(started), error=f"{type(error).__name__}: {error}")
    return Check(ok=True, latency_ms=_elapsed_ms(started))


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _probe_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def redis_uptime_s() -> float:
    """How long the shared Redis has been running. It keeps nothing on disk: after a restart, what
    the processes keep there of themselves (sockets' presence, media processes' heartbeats) is
    whole again only once each has refreshed it, and a sweep that reads it must wait that long."""
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        return float(client.info("server")["uptime_in_seconds"])
    finally:
        client.close()


def _probe_redis(*, timeout_s: float) -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
    )
    try:
        client.ping()
    finally:
        client.close()


def _probe_celery(*, timeout_s: float) -> None:
    token = uuid.uuid4().hex
    result = ping.apply_async(
        kwargs={"token": token}, queue=settings.HEALTHZ_CELERY_QUEUE, retry=False, expires=timeout_s
    )
    try:
        answer = result.get(timeout=timeout_s)
    finally:
        result.forget()
    if answer != token:
        raise RuntimeError(f"worker answered {answer!r}, expected the token sent")


def system_health() -> dict[str, Any]:
    """Check the database, Redis and a Celery round trip through a worker.

    The Celery check is skipped (and failed) when Redis, its broker, is down, so that the
    answer comes within about one timeout whatever is broken.
    """
    timeout_s = settings.HEALTHZ_TIMEOUT_S
    checks = {
        "database": _timed(_probe_database),
        "redis": _timed(lambda: _probe_redis(timeout_s=timeout_s)),
    }
    if checks["redis"].ok:
        checks["celery"] = _timed(lambda: _probe_celery(timeout_s=timeout_s))
    else:
        checks["celery"] = Check(ok=False, latency_ms=0.0, error="skipped: Redis (the broker) is unreachable")
    is_healthy = all(check.ok for check in checks.values())
    return {
        "status": "ok" if is_healthy else "error",
        "checks": {name: asdict(check) for name, check in checks.items()},
    }
