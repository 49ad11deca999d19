"""Meta's concurrency cap at full size: 1,000 live inbound calls on one number, counted atomically.

Starts the web process (`benchlib.start_server`) against DATABASE_URL and sends --calls signed
`connect` webhooks for one number as fast as --concurrency connections allow, with no agent free:
every call the cap admits waits in the queue, every call beyond it is rejected (`capacity`). Then
every customer hangs up (Meta's `terminate`). The number's live-call counter is read after each
phase and compared with the calls that are really live; any difference is drift.

    .venv/bin/python bench/capacity.py [--calls 1050] [--concurrency 50]

Ends with one `name=value` line per figure.
"""

import argparse
import asyncio
import time

import httpx
from benchlib import (
    call_connect,
    call_terminate,
    prepare_number,
    print_figures,
    signed,
    take_media_hand_offs,
    web_server,
)


async def send_all(url: str, payloads: list[dict], concurrency: int) -> tuple[float, int]:
    """Every payload signed and posted, `concurrency` at a time: (seconds taken, refused deliveries)."""
    requests = [signed(payload) for payload in payloads]
    pending = iter(requests)
    refused = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal refused
        for body, headers in pending:
            response = await client.post(url, content=body, headers=headers)
            refused += response.status_code != 200

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return time.perf_counter() - started, refused


async def run(url: str, calls: int, concurrency: int, stamp: int) -> dict[str, float]:
    from asgiref.sync import sync_to_async

    stop_taking = asyncio.Event()
    taker = asyncio.create_task(take_media_hand_offs(stop_taking))
    customers = [f"4479{stamp % 10**6:06d}{index:04d}" for index in range(calls)]
    call_ids = [f"wacid.cap-{stamp}-{index}" for index in range(calls)]
    pairs = list(zip(call_ids, customers, strict=True))
    connect_s, refused = await send_all(url, [call_connect(*pair) for pair in pairs], concurrency)
    after_connects = await sync_to_async(count)(call_ids)
    hang_up_s, refused_too = await send_all(url, [call_terminate(*pair) for pair in pairs], concurrency)
    after_hang_ups = await sync_to_async(count)(call_ids)
    stop_taking.set()
    await taker
    return {
        "connects_per_s": calls / connect_s,
        "hang_ups_per_s": calls / hang_up_s,
        "webhooks_refused": refused + refused_too,
        "live_counter_at_cap": after_connects["counter"],
        "live_calls_at_cap": after_connects["live"],
        "rejected_capacity": after_connects["rejected"],
        "live_counter_after_hang_ups": after_hang_ups["counter"],
        "live_calls_after_hang_ups": after_hang_ups["live"],
        "counter_drift": abs(after_connects["counter"] - after_connects["live"])
        + abs(after_hang_ups["counter"] - after_hang_ups["live"]),
    }


def count(call_ids: list[str]) -> dict[str, int]:
    from benchlib import NUMBER_ID

    from calls.models import Call, LiveCallCount
    from whatsapp.models import BusinessNumber

    number = BusinessNumber.objects.get(phone_number_id=NUMBER_ID)
    calls = Call.objects.filter(wa_call_id__in=call_ids)
    return {
        "counter": LiveCallCount.objects.get(business_number=number, direction="inbound").live,
        "live": calls.filter(status__in=Call.LIVE_STATUSES).count(),
        "rejected": calls.filter(end_reason="rejected", end_detail="capacity").count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1050)
    parser.add_argument("--concurrency", type=int, default=50)
    arguments = parser.parse_args()

    with web_server() as base_url:
        from django.conf import settings

        print(f"cap: {settings.MAX_CONCURRENT_CALLS_PER_DIRECTION} live inbound calls per number")
        prepare_number("Capacity bench", max_wait_s=3600)  # no members: every admitted call waits
        url = f"{base_url}/webhooks/whatsapp/"
        figures = asyncio.run(run(url, arguments.calls, arguments.concurrency, int(time.time())))
    print_figures(figures)


if __name__ == "__main__":
    main()
