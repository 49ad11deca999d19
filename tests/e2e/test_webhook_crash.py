"""A web process killed (SIGKILL) in the middle of a burst of deliveries loses none it answered 200.

Meta's promise is ours too: a 200 means the delivery is stored durably, so every delivery that got
one is handled exactly once (by the worker, restarted), whatever the web process was doing when it
died; the deliveries without a 200 are Meta's to deliver again, and delivered again they are
handled once.
"""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import uuid

import aiohttp
import pytest
from django.conf import settings
from django.db.models import Count

from calls.tests.factories import ContactFactory
from conftest import database_url_for_subprocess
from core.processes import web_server_command
from messaging.models import Charge, Message
from tests.e2e.conftest import ROOT, _accepts_connections, free_port, task_worker, wait_for
from whatsapp.models import WebhookEvent
from whatsapp.tests import payloads
from whatsapp.tests.conftest import sign
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BURST = 300


@contextlib.contextmanager
def web_process(**environment: str):
    """The web process (uvicorn, one process: the one a SIGKILL ends) on a free port: its URL and process."""
    port = free_port()
    process = subprocess.Popen(
        web_server_command(port=port, grace_s=2),
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url_for_subprocess(), "REDIS_URL": settings.REDIS_URL,
             **environment},
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not _accepts_connections(port):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("the web server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=15)


def delivered(message_id: str) -> bytes:
    return json.dumps(payloads.message_status("delivered", message_id)).encode()


async def post_burst(url: str, bodies: dict[str, bytes], kill_after: int | None, pid: int) -> set[str]:
    """POST every body at once; SIGKILL `pid` once `kill_after` got their 200. Which got a 200."""
    answered: set[str] = set()

    async def post(http: aiohttp.ClientSession, message_id: str, body: bytes) -> None:
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
        try:
            async with http.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status == 200:
                    answered.add(message_id)
        except (aiohttp.ClientError, TimeoutError):
            return  # the process died under it: no 200
        if kill_after is not None and len(answered) == kill_after:
            os.kill(pid, signal.SIGKILL)

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100), timeout=timeout) as http:
        await asyncio.gather(*(post(http, message_id, body) for message_id, body in bodies.items()))
    return answered


def test_every_delivery_answered_200_before_a_sigkill_is_handled_exactly_once(fast_passwords):
    number = BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)
    contact = ContactFactory(wa_id=payloads.CUSTOMER)
    message_ids = [f"wamid.burst{index}" for index in range(BURST)]
    Message.objects.bulk_create(
        Message(business_number=number, contact=contact, direction="outbound", message_type="text", text="Hi",
                request={"type": "text"}, status="sent", wa_message_id=message_id, idempotency_key=message_id)
        for message_id in message_ids
    )  # fmt: skip
    bodies = {message_id: delivered(message_id) for message_id in message_ids}
    queue = f"test-crash-{uuid.uuid4().hex[:8]}"
    environment = {"WEBHOOK_HANDLE_IN_WORKER": "true", "CELERY_QUEUE": queue}

    with web_process(**environment) as (url, web):
        answered = asyncio.run(post_burst(f"{url}/webhooks/whatsapp/", bodies, BURST // 3, web.pid))
        assert web.wait(timeout=10) == -signal.SIGKILL
    assert BURST // 3 <= len(answered) < BURST, "the web process was killed mid-burst"

    with web_process(**environment) as (url, _), task_worker(queue, **environment):
        # Whatever was stored waits for the worker: it handles each once.
        wait_for(lambda: not WebhookEvent.objects.filter(status="queued").exists())
        handled = set(Message.objects.filter(status="delivered").values_list("wa_message_id", flat=True))
        assert answered <= handled
        charges = Charge.objects.values("reference").annotate(count=Count("pk"))
        assert {row["reference"] for row in charges} == handled
        assert {row["count"] for row in charges} == {1}

        # Meta delivers again what got no 200 (and, for good measure, what did): each handled once.
        asyncio.run(post_burst(f"{url}/webhooks/whatsapp/", bodies, None, 0))
        wait_for(lambda: not WebhookEvent.objects.filter(status="queued").exists())
        wait_for(lambda: Message.objects.filter(status="delivered").count() == BURST)
    charges = Charge.objects.values("reference").annotate(count=Count("pk"))
    assert len(charges) == BURST and {row["count"] for row in charges} == {1}
    assert WebhookEvent.objects.filter(kind="message.status").count() == BURST
