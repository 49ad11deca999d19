"""End-to-end fixtures: the real ASGI app served by uvicorn, and Debian's Chromium."""

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from conftest import database_url_for_subprocess
from core.processes import web_server_command

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/lib/chromium/chromium"
# An agent who greets and then listens (4.5 s of speech, a 2 s pause, looped): sandbox customers say
# their next phrase when the other side pauses.
AGENT_VOICE = ROOT / "whatsapp" / "sandbox" / "audio" / "agent" / "hello.wav"
# ../shared/MEDIA_NOTES.md: headless as root, a fake microphone that says AGENT_VOICE, loopback ICE
# candidates, and real host addresses instead of mDNS names (which aiortc cannot resolve).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    f"--use-file-for-fake-audio-capture={AGENT_VOICE}",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def serving_app(**environment: str):
    """`uvicorn config.asgi:application`, as the Procfile runs it (with one worker), against the
    test database, with `environment` added to its own. Yields its base URL.

    A separate process (not a fork of the test process, whose thread pools would not survive
    the fork), so data the test commits is visible to it through the database.
    """
    port = free_port()
    with web_process(port, **environment):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def web_process(port: int, **environment: str):
    """The web process of `serving_app` on `port`, once it accepts connections: the Popen, for a
    test that kills it (and starts another on the same port)."""
    process = subprocess.Popen(
        web_server_command(port=port, grace_s=2),  # a socket still open at the test's end is cut after 2 s
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url_for_subprocess(),
            "REDIS_URL": settings.REDIS_URL,
            **environment,
        },
    )
    deadline = time.monotonic() + 20
    while not _accepts_connections(port):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("the web server did not start")
        time.sleep(0.05)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # stopping is not what the tests test: make sure it is gone
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def live_server_url(transactional_db):
    with serving_app() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module: Playwright's loop must not outlive it into async tests."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in the test's thread; the test's own
    # ORM calls are still synchronous, so Django's async-safety guard is lifted for e2e tests.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def sign_in(page, live_server_url: str, username: str, password: str) -> None:
    page.goto(f"{live_server_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server_url}/")


def signed_in_available(browser, live_server_url: str, agent, *, init_script: str | None = None):
    """A new page (in a context of its own) with `agent` signed in and available; `init_script`
    runs in the page before any of its own scripts."""
    from playwright.sync_api import expect

    from agents.tests.factories import PASSWORD

    page = browser.new_context().new_page()
    if init_script is not None:
        page.add_init_script(init_script)
    sign_in(page, live_server_url, agent.user.username, PASSWORD)
    page.click("button[data-status-choice=available]")
    expect(page.locator("#presence")).to_have_attribute("data-status", "available")
    return page


class MediaProcessThread:
    """The `media` process (calls.media), on its own event loop beside the test."""

    def __init__(self, spool_dir: Path) -> None:
        from calls.media import CallMedia, MediaProcess

        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.process = MediaProcess()
        self.calls = CallMedia(process=self.process, spool_dir=spool_dir)
        self.process.handlers = self.calls.handlers()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._run(),), daemon=True)

    async def _run(self) -> None:
        try:
            await self.process.run(stop=self.stop)
        finally:
            await self.calls.close()

    def __enter__(self) -> "MediaProcessThread":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=15)


@contextlib.contextmanager
def recording_file(recording) -> Iterator[Path]:
    """A stored (sealed) recording decrypted into a temporary file, for the tests' audio checks."""
    import tempfile

    from recordings.models import Recording
    from recordings.services import recording_read

    with tempfile.TemporaryDirectory() as folder, recording_read(recording) as audio:
        path = Path(folder) / f"recording.{Recording.EXTENSIONS[recording.format]}"
        path.write_bytes(audio.read())
        yield path


def wait_for(predicate, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while not (result := predicate()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
    return result


@pytest.fixture
def settings_for_media(settings, recordings_storage):
    """Loopback-only ICE for the simulated customers' media legs; recordings stored in tmp_path."""
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    settings.MEDIA_ICE_SERVERS = []
    return settings


@contextlib.contextmanager
def sandbox_serving(number, live_server_url: str, settings, tmp_path: Path):
    """The sandbox playing Meta for `number`: webhooks to the live server, the app's Graph API
    calls to the sandbox, customers' recordings under tmp_path. Yields (its thread, the sandbox)."""
    from whatsapp.tests.conftest import sandbox_serving as serving

    with serving(
        settings, number, token="e2e-sandbox-token", retries=None,
        webhook_url=f"{live_server_url}/webhooks/whatsapp/", app_secret=settings.WHATSAPP_APP_SECRET,
        record_dir=tmp_path / "customers",
    ) as sandbox:  # fmt: skip
        yield sandbox.thread, sandbox


@contextlib.contextmanager
def task_worker(queue: str, **environment: str):
    """A `celery worker` taking the product's tasks from its own `queue` (the web process this test
    starts queues there), against the test database; stopped, with its tasks, before the test's
    data is flushed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "--app", "config", "worker", "--pool", "solo", "--loglevel",
         "WARNING", "--queues", queue, "--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url_for_subprocess(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_QUEUE": queue,
            **environment,
        },
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        client.delete(queue)
        client.close()
