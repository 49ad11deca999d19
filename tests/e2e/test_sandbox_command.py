"""`manage.py sandbox`, as `make demo` runs it: simulated customers keep calling and writing to the
product."""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from conftest import ROOT, database_url_for_subprocess
from messaging.demo import DEMO_TEMPLATES, demo_templates_create
from messaging.services import country_of_wa_id
from tests.e2e.conftest import free_port
from whatsapp.models import BusinessNumber, WebhookEvent
from whatsapp.sandbox.meta import ENABLED_CALLING_SETTINGS

pytestmark = pytest.mark.e2e


def test_sandbox_command_places_calls_to_the_product(live_server_url):
    number = BusinessNumber.objects.create(
        phone_number_id="100000000000001",
        waba_id="200000000000001",
        display_phone_number="+44 20 7946 0000",
        is_sandbox=True,
        calling_settings=dict(ENABLED_CALLING_SETTINGS),
    )
    demo_templates_create(waba_id=number.waba_id)
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "REDIS_URL": settings.REDIS_URL,
        "MEDIA_HOST_ADDRESSES": "127.0.0.1",
    }
    command = [
        sys.executable, "manage.py", "sandbox", "--port", str(port), "--customers", "3",
        "--calls-per-minute", "120", "--webhook-url", f"{live_server_url}/webhooks/whatsapp/",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while WebhookEvent.objects.filter(kind="call.connect").count() < 2:
            assert time.monotonic() < deadline, "no calls arrived from the sandbox"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)

    connects = list(WebhookEvent.objects.filter(kind="call.connect"))
    assert process.returncode == 0
    assert f"{len(DEMO_TEMPLATES)} template(s), 3 customers" in output
    assert {event.phone_number_id for event in connects} == {"100000000000001"}
    assert all(event.payload["item"]["session"]["sdp_type"] == "offer" for event in connects)


def senders_of_texts() -> set[str]:
    return {event.payload["item"]["from"] for event in WebhookEvent.objects.filter(kind="message.received")}


def test_sandbox_command_starts_scripted_chats_with_the_product(live_server_url):
    BusinessNumber.objects.create(
        phone_number_id="100000000000002",
        waba_id="200000000000002",
        display_phone_number="+44 20 7946 0002",
        is_sandbox=True,
        calling_settings=dict(ENABLED_CALLING_SETTINGS),
    )
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "REDIS_URL": settings.REDIS_URL,
        "MEDIA_HOST_ADDRESSES": "127.0.0.1",
    }
    command = [
        sys.executable, "manage.py", "sandbox", "--port", str(port), "--customers", "3",
        "--chats-per-minute", "240", "--webhook-url", f"{live_server_url}/webhooks/whatsapp/",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while len(senders_of_texts()) < 5:
            assert time.monotonic() < deadline, "not every customer wrote"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)

    received = list(WebhookEvent.objects.filter(kind="message.received"))
    senders = senders_of_texts()
    assert process.returncode == 0
    assert "3 customers (and 2 of countries not called)" in output
    assert {event.phone_number_id for event in received} == {"100000000000002"}
    assert {event.payload["item"]["type"] for event in received} == {"text"}
    assert len(senders) == 5
    assert any(country_of_wa_id(wa_id) in settings.OUTBOUND_BLOCKED_COUNTRIES for wa_id in senders)
