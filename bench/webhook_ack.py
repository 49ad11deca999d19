"""Webhook acknowledgement latency: signed `calls` and `messages` deliveries at a steady rate.

Starts `uvicorn config.asgi:application` (as the Procfile does) on a free port against the database
in DATABASE_URL (the embedded SQLite when unset; the figures that matter are PostgreSQL's), then
sends deliveries open-loop at RATE per second for SECONDS, half `calls` (connect, then terminate)
and half `messages` (texts and statuses), each signed like Meta's. The calls are real work: the
number has a queue, each connect records a call and hands it to the media processes (this script
takes those hand-offs off the channel, as media processes would), each terminate ends it.
Latency is measured from each delivery's scheduled send time to the end of its answer, so a slow
server cannot hide queueing. The answer does not wait for the calls' handlers (whatsapp.intake):
so that no backlog can hide behind it, the script then waits for every call event of the run to be
handled and reports the time from its storing to its handling (`calls_handled_*`) and how many
were still not handled 30 s after the load (`calls_unhandled`).

    .venv/bin/python bench/webhook_ack.py [--rate 200] [--seconds 10]

Ends with one `name=value` line per figure; the last is `webhook_ack_p99_ms`.
"""

import argparse
import asyncio
import functools
import statistics
import time

from benchlib import (
    Poster,
    call_connect,
    call_terminate,
    envelope,
    open_loop,
    percentile,
    prepare_number,
    print_figures,
    signed,
    take_media_hand_offs,
    web_server,
)


def delivery(index: int) -> dict:
    """The index-th delivery of the mix: a call's connect or terminate, a text, or a status."""
    customer = f"44770090{index % 10000:04d}"
    now = str(int(time.time()))
    kind = index % 4
    if kind == 0:
        return call_connect(f"wacid.bench{index // 2}", customer)
    if kind == 1:
        return call_terminate(f"wacid.bench{index // 2}", customer)
    if kind == 2:
        text = {
            "from": customer,
            "id": f"wamid.in{index}",
            "timestamp": now,
            "type": "text",
            "text": {"body": "hi"},
        }
        return envelope("messages", {"messages": [text]})
    pricing = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "utility"}
    status = {"id": f"wamid.out{index}", "status": "delivered", "timestamp": now, "recipient_id": customer}
    return envelope("messages", {"statuses": [status | {"pricing": pricing}]})


async def run_load(url: str, *, rate: float, seconds: float, offset: int) -> tuple[list[float], int]:
    total = int(rate * seconds)
    latencies: list[float] = []
    failures = 0
    stop_taking = asyncio.Event()
    taker = asyncio.create_task(take_media_hand_offs(stop_taking))
    poster = Poster(url)

    async def send(index: int, scheduled: float) -> None:
        nonlocal failures
        # Built when sent: a connect's timestamp is its sending time, however long the run (a
        # connect older than CALL_CONNECT_MAX_AGE_S is a call already over, never rung).
        request = poster.request(*signed(delivery(offset + index)))
        try:
            if await poster.post(request) != 200:
                failures += 1
        except (OSError, TimeoutError):
            failures += 1
        latencies.append(time.perf_counter() - scheduled)

    try:
        await open_loop(
            [(index / rate, functools.partial(send, index)) for index in range(total)], lead_s=0.2
        )
    finally:
        poster.close()
    stop_taking.set()
    await taker
    return latencies, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup-seconds", type=float, default=2.0)
    arguments = parser.parse_args()

    with web_server() as base_url:
        prepare_number()
        url = f"{base_url}/webhooks/whatsapp/"
        offset = int(time.time() * 1000) * 10  # fresh ids each run: every delivery is new work
        asyncio.run(run_load(url, rate=arguments.rate, seconds=arguments.warmup_seconds, offset=offset))
        from django.utils import timezone

        measured_from = timezone.now()
        latencies, failures = asyncio.run(
            run_load(url, rate=arguments.rate, seconds=arguments.seconds, offset=offset + 10**6)
        )
        handled_ms, unhandled = calls_handling(since=measured_from)

    latencies_ms = sorted(latency * 1000 for latency in latencies)
    p99 = percentile(latencies_ms, 0.99)
    print(f"deliveries: {len(latencies_ms)} at {arguments.rate:g}/s for {arguments.seconds:g} s")
    print(f"max: {latencies_ms[-1]:.1f} ms")
    print_figures(
        {
            "webhook_ack_failures": failures,
            "webhook_ack_median_ms": statistics.median(latencies_ms),
            "calls_handled_median_ms": statistics.median(handled_ms) if handled_ms else 0.0,
            "calls_handled_p99_ms": percentile(handled_ms, 0.99) if handled_ms else 0.0,
            "calls_unhandled": unhandled,
            "webhook_ack_p99_ms": p99,
        }
    )


def calls_handling(*, since) -> tuple[list[float], int]:
    """The calls' events stored since `since`: how long each took from its storing to its handling
    (ms), once every one is handled (or 30 s have gone by), and how many were not handled by then.
    The answer does not wait for the handling (whatsapp.intake): this is what keeps it honest."""
    from whatsapp.models import WebhookEvent

    events = WebhookEvent.objects.filter(kind__startswith="call.", received_at__gte=since)
    deadline = time.monotonic() + 30
    while events.filter(status=WebhookEvent.Status.PROCESSING).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    handled = events.filter(status=WebhookEvent.Status.HANDLED).values_list("received_at", "handled_at")
    return (
        sorted((handled_at - received_at).total_seconds() * 1000 for received_at, handled_at in handled),
        events.exclude(status=WebhookEvent.Status.HANDLED).count(),
    )


if __name__ == "__main__":
    main()
