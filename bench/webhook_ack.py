"""Webhook acknowledgement latency: signed `calls` and `messages` deliveries at a steady rate.

Starts `daphne config.asgi:application` (as the Procfile does) on a free port against the database
in DATABASE_URL (the embedded SQLite when unset; the figures that matter are PostgreSQL's), then
sends deliveries open-loop at RATE per second for SECONDS, half `calls` (connect, then terminate)
and half `messages` (texts and statuses), each signed like Meta's. The calls are real work: the
number has a queue, each connect records a call and hands it to the media processes (this script
takes those hand-offs off the channel, as media processes would), each terminate ends it.
Latency is measured from each delivery's scheduled send time to the end of its answer, so a slow
server cannot hide queueing.

    .venv/bin/python bench/webhook_ack.py [--rate 200] [--seconds 10]

Ends with one `name=value` line per figure; the last is `webhook_ack_p99_ms`.
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

WABA_ID, NUMBER_ID, BUSINESS = "900000000000001", "900000000000002", "442079460000"
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


def delivery(index: int) -> dict:
    """The index-th delivery of the mix: a call's connect or terminate, a text, or a status."""
    customer = f"44770090{index % 10000:04d}"
    metadata = {"display_phone_number": BUSINESS, "phone_number_id": NUMBER_ID}
    now = str(int(time.time()))
    kind = index % 4
    if kind in (0, 1):
        call = {
            "id": f"wacid.bench{index // 2}",
            "from": customer,
            "to": BUSINESS,
            "timestamp": now,
            "direction": "USER_INITIATED",
        }
        if kind == 0:
            call |= {"event": "connect", "session": {"sdp_type": "offer", "sdp": SDP}}
        else:
            call |= {
                "event": "terminate",
                "status": "COMPLETED",
                "start_time": now,
                "end_time": now,
                "duration": 30,
            }
        value = {"messaging_product": "whatsapp", "metadata": metadata, "contacts": [
            {"profile": {"name": "Bench"}, "wa_id": customer}], "calls": [call]}  # fmt: skip
        field_name = "calls"
    elif kind == 2:
        message = {
            "from": customer,
            "id": f"wamid.in{index}",
            "timestamp": now,
            "type": "text",
            "text": {"body": "hi"},
        }
        value = {"messaging_product": "whatsapp", "metadata": metadata, "messages": [message]}
        field_name = "messages"
    else:
        status = {
            "id": f"wamid.out{index}",
            "status": "delivered",
            "timestamp": now,
            "recipient_id": customer,
            "pricing": {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "utility"},
        }
        value = {"messaging_product": "whatsapp", "metadata": metadata, "statuses": [status]}
        field_name = "messages"
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": field_name, "value": value}]}],
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


APP_SECRET = "bench-app-secret"


def start_server(port: int) -> subprocess.Popen:
    """The web process as production runs it: DEBUG off, so no per-query debug bookkeeping."""
    environment = {
        **os.environ,
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",
        "SECRET_KEY": "bench-secret-key-not-for-production",
        "ALLOWED_HOSTS": "127.0.0.1",
        "WHATSAPP_TOKEN": "bench-token",
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "bench-verify-token",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=environment,
        check=True,
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-v",
            "0",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "config.asgi:application",
        ],
        cwd=ROOT,
        env=environment,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise SystemExit("daphne did not start") from None
            time.sleep(0.1)


def prepare_number() -> None:
    """The business number the deliveries are for, with a queue: calls to it are really handled."""
    from agents.models import Queue
    from whatsapp.models import BusinessNumber

    number, _ = BusinessNumber.objects.get_or_create(
        phone_number_id=NUMBER_ID,
        defaults={"waba_id": WABA_ID, "display_phone_number": "+44 20 7946 0000", "country": "GB"},
    )
    queue, _ = Queue.objects.get_or_create(name="Bench")
    queue.business_numbers.add(number)


async def take_media_hand_offs(stop: asyncio.Event) -> int:
    """Do what the media processes' shared channel consumer does: take each new call off it."""
    from channels.layers import get_channel_layer

    from calls.services import MEDIA_CHANNEL

    layer, taken = get_channel_layer(), 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(layer.receive(MEDIA_CHANNEL), 0.5)
            taken += 1
        except TimeoutError:
            pass
    return taken


async def run_load(
    url: str, secret: str, *, rate: float, seconds: float, offset: int
) -> tuple[list[float], int]:
    total = int(rate * seconds)
    bodies = [json.dumps(delivery(offset + index)).encode() for index in range(total)]
    signatures = ["sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() for body in bodies]
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    stop_taking = asyncio.Event()
    taker = asyncio.create_task(take_media_hand_offs(stop_taking))
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def send(index: int, scheduled: float) -> None:
            nonlocal failures
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signatures[index]}
            try:
                response = await client.post(url, content=bodies[index], headers=headers)
                if response.status_code != 200:
                    failures += 1
            except httpx.HTTPError:
                failures += 1
            latencies.append(time.perf_counter() - scheduled)

        start = time.perf_counter() + 0.2
        await asyncio.gather(*(send(index, start + index / rate) for index in range(total)))
    stop_taking.set()
    await taker
    return latencies, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup-seconds", type=float, default=2.0)
    arguments = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    database = settings.DATABASES["default"]
    print(f"database: {database['ENGINE'].rsplit('.', 1)[-1]} {database['NAME']}")
    port = free_port()
    server = start_server(port)
    prepare_number()
    url = f"http://127.0.0.1:{port}/webhooks/whatsapp/"
    offset = int(time.time() * 1000) * 10  # fresh ids each run: every delivery is new work
    try:
        asyncio.run(
            run_load(url, APP_SECRET, rate=arguments.rate, seconds=arguments.warmup_seconds, offset=offset)
        )
        latencies, failures = asyncio.run(
            run_load(url, APP_SECRET, rate=arguments.rate, seconds=arguments.seconds, offset=offset + 10**6)
        )
    finally:
        server.terminate()
        server.wait(timeout=20)

    latencies_ms = sorted(latency * 1000 for latency in latencies)
    p99 = latencies_ms[min(len(latencies_ms) - 1, int(len(latencies_ms) * 0.99))]
    print(f"deliveries: {len(latencies_ms)} at {arguments.rate:g}/s for {arguments.seconds:g} s")
    print(f"max: {latencies_ms[-1]:.1f} ms")
    print(f"webhook_ack_failures={failures}")
    print(f"webhook_ack_median_ms={statistics.median(latencies_ms):.1f}")
    print(f"webhook_ack_p99_ms={p99:.1f}")


if __name__ == "__main__":
    main()
