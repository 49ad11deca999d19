"""Broadcast day: a campaign's status deliveries pour in while customers write and call.

Starts the web process and the worker as `make run` does (uvicorn as the Procfile runs it,
`benchlib.start_server`; `celery --app config worker --concurrency 2`, the Procfile's worker)
against DATABASE_URL (PostgreSQL's figures are the ones that matter) and REDIS_URL, records a
campaign of outbound messages already sent, signs AGENTS agents in (one dashboard WebSocket each,
available), then for SECONDS sends, open-loop and each signed like Meta's:

- the campaign's status deliveries at RATE a second: `sent`, `delivered` and `read` of every
  message (the last two priced, WHATSAPP_API.md §6.5), shuffled (a `read` may come before its
  `delivered`), a share of them delivered twice (Meta's retries);
- customers' text messages, MESSAGES a second;
- customers' calls, CALLS a second, each ringing a free agent (the ring is timed from the
  connect's scheduled send time to `call.offered` on the agent's socket), hung up once rung.

Then it times how long the worker takes to handle the backlog (`backlog_drained_s`, from the end
of the load until no event waits), and checks the database: every delivery's effect is there
(every message read, delivered and charged once; every text and call recorded) and none twice.

    .venv/bin/python bench/broadcast_day.py [--rate 400] [--seconds 60] [--messages 5]
                                            [--calls 2] [--agents 10]

Ends with one `name=value` line per figure, among them `webhook_ack_p99_ms`, `ring_p99_ms`,
`deliveries_lost`, `deliveries_handled_twice`, `backlog_drained_s` and `cpu_ms_per_delivery`
(the web and worker processes' CPU from the start of the load until the backlog is drained,
divided by the deliveries sent).
"""

import argparse
import asyncio
import functools
import os
import random
import signal
import statistics
import sys
import time
from collections.abc import Callable

import benchlib
from asgiref.sync import sync_to_async
from benchlib import (
    Poster,
    call_connect,
    call_terminate,
    cpu_seconds,
    envelope,
    open_loop,
    percentile,
    post_client,
    print_figures,
    resident_bytes,
    server_pids,
    signed,
    take_media_hand_offs,
    web_server,
    worker_running,
)
from django.utils import timezone
from ring_latency import AgentSocket, prepare_agents

DUPLICATED_SHARE = 0.05  # of the status deliveries, sent a second time


def prepare_campaign(count: int, stamp: str) -> dict[str, str]:
    """`count` outbound messages of a campaign, each to its own customer, not yet sent on (Meta named
    them): each one's id and its customer."""
    from django.core.management import call_command

    from messaging.models import Contact, Message
    from whatsapp.models import BusinessNumber

    call_command("load_rate_cards", verbosity=0)
    number = BusinessNumber.objects.get(phone_number_id=benchlib.NUMBER_ID)
    customers = [f"4477{stamp[-5:]}{index:05d}" for index in range(count)]
    Contact.objects.bulk_create([Contact(wa_id=wa_id) for wa_id in customers], ignore_conflicts=True)
    contacts = dict(Contact.objects.filter(wa_id__in=customers).values_list("wa_id", "pk"))
    ids = [f"wamid.campaign-{stamp}-{index}" for index in range(count)]
    Message.objects.bulk_create(
        [
            Message(
                business_number=number,
                contact_id=contacts[wa_id],
                direction="outbound",
                message_type="template",
                text="Spring sale",
                request={"type": "template"},
                status="pending",
                wa_message_id=message_id,
                idempotency_key=message_id,
            )
            for wa_id, message_id in zip(customers, ids, strict=True)
        ],
        batch_size=1000,
    )
    return dict(zip(ids, customers, strict=True))


def status_delivery(message_id: str, customer: str, state: str, index: int) -> dict:
    item = {
        "id": message_id,
        "status": state,
        "timestamp": str(int(time.time()) - 60 + index % 60),
        "recipient_id": customer,
    }
    if state != "sent":
        item["pricing"] = {
            "billable": True,
            "pricing_model": "PMP",
            "type": "regular",
            "category": "marketing",
        }
    return envelope("messages", {"statuses": [item]})


def text_delivery(message_id: str, customer: str) -> dict:
    text = {
        "from": customer,
        "id": message_id,
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": "Is the sale on in store too?"},
    }
    return envelope(
        "messages", {"contacts": [{"profile": {"name": "Bench"}, "wa_id": customer}], "messages": [text]}
    )


class Load:
    def __init__(self, poster: Poster) -> None:
        self.poster = poster
        self.latencies: list[float] = []
        self.answered: list[tuple[str, bool]] = []  # (what, answered 200)

    def prepared(self, payload: dict) -> bytes:
        """A delivery's request, signed and built before the run (as Meta's come: ready to send)."""
        return self.poster.request(*signed(payload))

    async def post(self, request: bytes | Callable[[], dict], what: str, scheduled: float) -> None:
        # A connect is built when sent: its timestamp is its sending time (one older than
        # CALL_CONNECT_MAX_AGE_S is a call already over, never rung).
        if callable(request):
            request = self.prepared(request())
        try:
            ok = await self.poster.post(request) == 200
        except (OSError, TimeoutError):
            ok = False
        self.latencies.append(time.perf_counter() - scheduled)
        self.answered.append((what, ok))


async def run(
    base_url: str, session_keys: list[str], arguments, campaign: dict[str, str], stamp: str
) -> dict:
    message_ids = list(campaign)
    url = f"{base_url}/webhooks/whatsapp/"
    statuses = [(message_id, state) for message_id in message_ids for state in ("sent", "delivered", "read")]
    random.seed(stamp)
    random.shuffle(statuses)
    statuses += random.sample(statuses, int(len(statuses) * DUPLICATED_SHARE))
    random.shuffle(statuses)
    seconds = arguments.seconds
    stop_taking = asyncio.Event()
    taker = asyncio.create_task(take_media_hand_offs(stop_taking))
    async with post_client(1000) as http:
        agents = [AgentSocket(http, base_url, key) for key in session_keys]
        await asyncio.gather(*(agent.open() for agent in agents))
        await asyncio.wait_for(asyncio.gather(*(agent.is_available.wait() for agent in agents)), 30)
        load = Load(Poster(url))
        rate = len(statuses) / seconds
        # Each send at its offset from the start, which open_loop sets once all are built (a
        # start set before building three minutes' deliveries was already past when they were).
        sends = [
            (
                index / rate,
                functools.partial(
                    load.post,
                    load.prepared(status_delivery(message_id, campaign[message_id], state, index)),
                    "status",
                ),
            )
            for index, (message_id, state) in enumerate(statuses)
        ]
        texts = int(arguments.messages * seconds)
        sends += [
            (
                index / arguments.messages,
                functools.partial(
                    load.post,
                    load.prepared(text_delivery(f"wamid.in-{stamp}-{index}", f"4479{stamp[-5:]}{index:05d}")),
                    "text",
                ),
            )
            for index in range(texts)
        ]
        calls = int(arguments.calls * seconds)
        call_ids = [f"wacid.day-{stamp}-{index}" for index in range(calls)]
        callers = [f"4478{stamp[-5:]}{index:05d}" for index in range(calls)]
        call_times: dict[int, float] = {}
        rings: dict[str, float] = {}

        async def call(index: int, scheduled: float) -> None:
            call_times[index] = scheduled
            connect = functools.partial(call_connect, call_ids[index], callers[index])
            await load.post(connect, "call", scheduled)
            deadline = time.perf_counter() + 10
            while time.perf_counter() < deadline:
                for agent in agents:
                    if f"+{callers[index]}" in agent.rings:
                        rings[callers[index]] = agent.rings.pop(f"+{callers[index]}")
                if callers[index] in rings:
                    break
                await asyncio.sleep(0.01)
            hang_up = functools.partial(call_terminate, call_ids[index], callers[index])
            await load.post(hang_up, "hang-up", time.perf_counter())

        web_cpu, worker_cpu = cpu_seconds(server_pids), cpu_seconds(worker_pids)
        sender_cpu = time.process_time()
        web_rss, worker_rss = resident_bytes(server_pids), resident_bytes(worker_pids)
        load_began = await sync_to_async(timezone.now)()
        sends += [(index / arguments.calls, functools.partial(call, index)) for index in range(calls)]
        await open_loop(sends)
        load_end = time.perf_counter()
        sender_cpu = time.process_time() - sender_cpu
        load.poster.close()
        drained = await backlog_drained(load_end, since=load_began)
        web_cpu, worker_cpu = cpu_seconds(server_pids) - web_cpu, cpu_seconds(worker_pids) - worker_cpu
        for agent in agents:
            await agent.close()
    stop_taking.set()
    await taker
    ring_latencies = [
        rings[caller] - call_times[index] for index, caller in enumerate(callers) if caller in rings
    ]
    refused = sum(1 for _, ok in load.answered if not ok)
    deliveries = len(load.answered)
    lost, twice = await sync_to_async(effects_check)(message_ids, stamp, texts=texts, calls=calls)
    print(
        f"deliveries: {deliveries} in {seconds:g} s "
        f"({len(statuses)} statuses of {len(message_ids)} messages, "
        f"{texts} texts, {calls} calls and their hang-ups); refused: {refused}; "
        f"calls rung: {len(ring_latencies)} of {calls}"
    )
    print(f"CPU: web {web_cpu:.1f} s, worker {worker_cpu:.1f} s; this bench while sending {sender_cpu:.1f} s")
    print(
        f"memory (RSS): web {web_rss / 2**20:.0f} → {resident_bytes(server_pids) / 2**20:.0f} MiB, "
        f"worker {worker_rss / 2**20:.0f} → {resident_bytes(worker_pids) / 2**20:.0f} MiB"
    )
    latencies_ms = sorted(latency * 1000 for latency in load.latencies)
    return {
        "webhook_ack_median_ms": statistics.median(latencies_ms),
        "webhook_ack_over_1s_percent": 100
        * sum(1 for value in latencies_ms if value > 1000)
        / len(latencies_ms),
        "webhook_ack_refused": refused,
        "ring_median_ms": statistics.median(ring_latencies) * 1000 if ring_latencies else float("nan"),
        "ring_missed": calls - len(ring_latencies),
        "web_cpu_ms_per_delivery": web_cpu * 1000 / deliveries,
        "worker_cpu_ms_per_delivery": worker_cpu * 1000 / deliveries,
        "deliveries_lost": lost,
        "deliveries_handled_twice": twice,
        "backlog_drained_s": drained,
        "cpu_ms_per_delivery": (web_cpu + worker_cpu) * 1000 / deliveries,
        "ring_p99_ms": percentile(ring_latencies, 0.99) * 1000 if ring_latencies else float("nan"),
        "webhook_ack_p99_ms": percentile(latencies_ms, 0.99),
    }


worker_pids: list[int] = []


async def backlog_drained(load_end: float, *, since, limit_s: float = 600) -> float:
    """Seconds from the end of the load until no event it brought waits for the worker (events left
    queued by an earlier run, such as the webhook bench's, which has no worker, are not its own)."""
    from whatsapp.models import WebhookEvent

    queued = WebhookEvent.objects.filter(status=WebhookEvent.Status.QUEUED, received_at__gte=since)
    waiting = sync_to_async(queued.exists)
    while await waiting():
        if time.perf_counter() - load_end > limit_s:
            return float("inf")
        await asyncio.sleep(0.1)
    return time.perf_counter() - load_end


def effects_check(message_ids: list[str], stamp: str, *, texts: int, calls: int) -> tuple[int, int]:
    """(Deliveries whose effect is missing, effects found twice), counted in the database."""
    from django.db.models import Count

    from calls.models import Call
    from messaging.models import Charge, Message

    campaign = Message.objects.filter(wa_message_id__in=message_ids)
    unread = campaign.exclude(status="read").count()
    undelivered = campaign.filter(delivered_at__isnull=True).count()
    charges = dict(
        Charge.objects.filter(reference__in=message_ids)
        .values("reference")
        .annotate(count=Count("pk"))
        .values_list("reference", "count")
    )
    uncharged = sum(1 for message_id in message_ids if message_id not in charges)
    charged_twice = sum(count - 1 for count in charges.values() if count > 1)
    received = (
        Message.objects.filter(wa_message_id__startswith=f"wamid.in-{stamp}-")
        .values("wa_message_id")
        .annotate(count=Count("pk"))
    )
    texts_found = {row["wa_message_id"]: row["count"] for row in received}
    calls_found = dict(
        Call.objects.filter(wa_call_id__startswith=f"wacid.day-{stamp}-")
        .values("wa_call_id")
        .annotate(count=Count("pk"))
        .values_list("wa_call_id", "count")
    )
    lost = unread + undelivered + uncharged + (texts - len(texts_found)) + (calls - len(calls_found))
    twice = charged_twice + sum(
        count - 1 for count in [*texts_found.values(), *calls_found.values()] if count > 1
    )
    if lost or twice:
        print(
            f"unread {unread}, undelivered {undelivered}, uncharged {uncharged}, "
            f"charged twice {charged_twice}, "
            f"texts {len(texts_found)} of {texts}, calls {len(calls_found)} of {calls}"
        )
    return lost, twice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=400.0, help="status deliveries per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--messages", type=float, default=5.0, help="customers' texts per second")
    parser.add_argument("--calls", type=float, default=2.0, help="customers' calls per second")
    parser.add_argument("--agents", type=int, default=10)
    arguments = parser.parse_args()
    os.environ["WEBHOOK_HANDLE_IN_WORKER"] = "true"
    # Nothing here may reach Meta: a send the worker tries fails at once on a closed local port.
    os.environ.setdefault("WHATSAPP_GRAPH_URL", "http://127.0.0.1:9/v23.0")
    stamp = str(int(time.time()))
    # Stopped from outside (a timeout, say): the web server and the worker are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with web_server() as base_url, worker_running() as worker:
        worker_pids[:] = [worker.pid]
        session_keys = prepare_agents(arguments.agents)
        count = int(arguments.rate * arguments.seconds / 3 / (1 + DUPLICATED_SHARE))
        campaign = prepare_campaign(count, stamp)
        figures = asyncio.run(run(base_url, session_keys, arguments, campaign, stamp))
    print_figures(figures)


if __name__ == "__main__":
    main()
