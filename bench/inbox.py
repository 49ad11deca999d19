"""Inbox push latency: from a customer's message (Meta's signed webhook) to the `conversation.message`
frame on the socket of the agent who has the conversation.

Starts the web process and the worker as production runs them (`benchlib.start_server`: uvicorn,
DEBUG off; `benchlib.worker_running`: the worker that handles Meta's message deliveries) against
DATABASE_URL (the embedded SQLite when unset; PostgreSQL's figures are the ones that matter) and
REDIS_URL (the bundled Redis when unset). Signs AGENTS agents in, one WebSocket each as the
dashboard holds one, makes them available with a chat limit above what they will hold, and gives
them CONVERSATIONS open conversations, evenly: each opened waiting in the number's queue and
claimed for its agent by the inbox's own service (messaging.conversations.conversation_claim), so
that assigned state and the agents' chat counts agree. Then:

1. --messages new customer messages (texts, each from another customer, across every agent)
   spread evenly at --rate a second: the figure that matters, and
2. a sustained phase: --sustained-seconds at --sustained-rate a second, in windows of 10 s, to see
   whether latency or the web server's memory (RSS, its worker processes included) grows.

Every message is a signed `messages` webhook POSTed to the running server. Latency runs from each
webhook's scheduled send time (open loop: a slow server cannot hide queueing) to the moment the
agent's socket receives the frame; a frame on any other agent's socket counts as misrouted.

    .venv/bin/python bench/inbox.py [--messages 300] [--rate 50] [--sustained-seconds 60]

Ends with one `name=value` line per figure; the last is `inbox_push_p99_ms` (goal: under 250 ms).
"""

import argparse
import asyncio
import math
import os
import statistics
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

import aiohttp
import benchlib
from benchlib import (
    cpu_seconds,
    envelope,
    machine_cpu_seconds,
    percentile,
    prepare_number,
    print_figures,
    resident_bytes,
    server_pids,
    signed,
    web_server,
    worker_running,
)

QUEUE_NAME = "Inbox bench"
CUSTOMER_NAME = "Inbox bench customer"
WINDOW_S = 10.0
MB = 1024 * 1024


def customer_wa_id(index: int) -> str:
    return f"44770091{index:04d}"


def prepare_agents(count: int, *, chat_limit: int) -> tuple[list[int], list[str]]:
    """`count` agents in the bench queue, offline, holding no conversation, each with a signed-in
    session: their ids and session keys. Conversations an earlier run left open are closed."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from agents.models import Agent, QueueMembership
    from messaging.models import Conversation

    queue = prepare_number(QUEUE_NAME, ring_timeout_s=60, max_wait_s=600, missed_offers_before_away=0)
    Conversation.objects.filter(
        business_number__in=queue.business_numbers.all(), state__in=Conversation.OPEN_STATES
    ).update(state=Conversation.State.CLOSED, closed_at=timezone.now(), updated_at=timezone.now())
    user_model = get_user_model()
    ids, keys = [], []
    for index in range(count):
        user, _ = user_model.objects.get_or_create(username=f"bench-inbox-agent-{index}")
        agent, _ = Agent.objects.get_or_create(user=user, defaults={"display_name": f"Inbox agent {index}"})
        Agent.objects.filter(pk=agent.pk).update(
            status=Agent.Status.OFFLINE, chat_limit=chat_limit, chat_count=0
        )
        QueueMembership.objects.get_or_create(queue=queue, agent=agent)
        ids.append(agent.pk)
        keys.append(benchlib.signed_in_session_key(user))
    return ids, keys


def assign_conversations(*, count: int, agent_ids: list[int]) -> dict[str, tuple[int, int]]:
    """`count` customers' conversations, each opened waiting in the bench queue and claimed by the
    next agent in turn through the inbox's service: customer → (conversation id, agent id)."""
    from django.utils import timezone

    from agents.models import Queue
    from messaging.conversations import conversation_claim
    from messaging.models import Contact, Conversation
    from whatsapp.models import BusinessNumber

    queue = Queue.objects.get(name=QUEUE_NAME)
    number = BusinessNumber.objects.get(queues=queue)
    wa_ids = [customer_wa_id(index) for index in range(count)]
    Contact.objects.bulk_create(
        [Contact(wa_id=wa_id, name=CUSTOMER_NAME, country="GB") for wa_id in wa_ids], ignore_conflicts=True
    )
    contacts = dict(Contact.objects.filter(wa_id__in=wa_ids).values_list("wa_id", "pk"))
    now = timezone.now()
    Conversation.objects.bulk_create(
        [
            Conversation(
                contact_id=contacts[wa_id], business_number=number, state=Conversation.State.WAITING,
                queue=queue, unread_count=0, last_message_at=now, opened_at=now, waiting_since=now,
            )
            for wa_id in wa_ids
        ]
    )  # fmt: skip
    waiting = dict(
        Conversation.objects.filter(
            contact__wa_id__in=wa_ids, business_number=number, state=Conversation.State.WAITING
        ).values_list("contact__wa_id", "pk")
    )
    assigned = {}
    for index, wa_id in enumerate(wa_ids):
        agent_id = agent_ids[index % len(agent_ids)]
        if conversation_claim(conversation_id=waiting[wa_id], agent_id=agent_id) is None:
            raise SystemExit(f"conversation {waiting[wa_id]} could not be claimed")
        assigned[wa_id] = (waiting[wa_id], agent_id)
    return assigned


def text_message(wa_id: str, message_id: str, text: str) -> dict:
    message = {
        "from": wa_id,
        "id": message_id,
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": text},
    }
    contacts = [{"profile": {"name": CUSTOMER_NAME}, "wa_id": wa_id}]
    return envelope("messages", {"contacts": contacts, "messages": [message]})


@dataclass
class Pushes:
    """The messages sent and not yet pushed, per conversation (oldest first), and the latencies."""

    agent_of: dict[int, int]  # conversation id → the agent who has it
    sent: dict[int, deque] = field(default_factory=lambda: defaultdict(deque))
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, latency s)
    acks: list[float] = field(default_factory=list)  # each webhook's answer, from its send time (s)
    misrouted: int = 0

    def expect(self, conversation_id: int, at: float) -> None:
        self.sent[conversation_id].append(at)

    def arrived(self, agent_id: int, frame: dict) -> None:
        conversation_id = frame.get("conversation_id")
        if self.agent_of.get(conversation_id) != agent_id or frame.get("agent_id") != agent_id:
            self.misrouted += 1
            return
        waiting = self.sent.get(conversation_id)
        if waiting:
            sent_at = waiting.popleft()
            self.latencies.append((sent_at, time.perf_counter() - sent_at))

    @property
    def pending(self) -> int:
        return sum(len(waiting) for waiting in self.sent.values())


class InboxAgent(benchlib.AgentSocket):
    """An agent's socket that passes on each `conversation.message` frame."""

    def __init__(self, http, base_url: str, session_key: str, agent_id: int, pushes: Pushes) -> None:
        super().__init__(http, base_url, session_key)
        self.agent_id, self.pushes = agent_id, pushes

    def on_frame(self, frame: dict) -> None:
        if frame.get("type") == "conversation.message":
            self.pushes.arrived(self.agent_id, frame)


async def send_messages(
    http: aiohttp.ClientSession,
    url: str,
    pushes: Pushes,
    assigned: dict[str, tuple[int, int]],
    customers: list[str],
    *,
    rate: float,
    tag: str,
) -> tuple[float, int]:
    """One text from each of `customers`, in order, at `rate` a second: the first's scheduled
    send time, and how many webhooks were refused."""
    refused = 0
    start = time.perf_counter() + 0.2

    async def post(index: int, wa_id: str) -> None:
        nonlocal refused
        scheduled = start + index / rate
        body, headers = signed(text_message(wa_id, f"wamid.inbox-{tag}-{index}", f"Message {index}"))
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        pushes.expect(assigned[wa_id][0], scheduled)
        async with http.post(url, data=body, headers=headers) as response:
            if response.status != 200:
                refused += 1
            await response.read()
        pushes.acks.append(time.perf_counter() - scheduled)

    await asyncio.gather(*(post(index, wa_id) for index, wa_id in enumerate(customers)))
    return start, refused


async def pushed_all(pushes: Pushes, *, timeout_s: float = 10.0) -> int:
    """Wait for the frames of every message sent, up to `timeout_s`: how many never came (forgotten,
    so that a late one is not taken for a later message's)."""
    deadline = time.perf_counter() + timeout_s
    while pushes.pending and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    missed = pushes.pending
    pushes.sent.clear()
    return missed


def milliseconds(latencies: list[float]) -> tuple[float, float]:
    """Median and p99 in ms (0 for none)."""
    if not latencies:
        return 0.0, 0.0
    return statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000


async def run(
    base_url: str, agent_ids: list[int], session_keys: list[str], *, conversations: int, arguments
) -> dict[str, float | int]:
    url = f"{base_url}/webhooks/whatsapp/"
    connector = aiohttp.TCPConnector(limit=300)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        pushes = Pushes(agent_of={})
        agents = [
            InboxAgent(http, base_url, key, agent_id, pushes)
            for agent_id, key in zip(agent_ids, session_keys, strict=True)
        ]
        await asyncio.gather(*(agent.open() for agent in agents))
        await asyncio.wait_for(asyncio.gather(*(agent.is_available.wait() for agent in agents)), 30)
        assigned = await asyncio.to_thread(assign_conversations, count=conversations, agent_ids=agent_ids)
        pushes.agent_of.update(assigned.values())
        print(f"{len(agents)} agents available, {len(assigned)} conversations assigned to them")
        # Customers in an order that spreads each run over every agent (agents take turns above).
        customers = list(assigned)

        def customers_from(offset: int, count: int) -> list[str]:
            return [customers[(offset + index) % len(customers)] for index in range(count)]

        _, refused = await send_messages(
            http, url, pushes, assigned, customers_from(0, 20), rate=20, tag=f"warm-{time.time_ns()}"
        )
        warm_missed = await pushed_all(pushes)
        pushes.latencies.clear()
        pushes.acks.clear()

        server_cpu, machine_cpu = cpu_seconds(server_pids), machine_cpu_seconds()
        _, burst_refused = await send_messages(
            http, url, pushes, assigned, customers_from(20, arguments.messages),
            rate=arguments.rate, tag=f"burst-{time.time_ns()}",
        )  # fmt: skip
        burst_missed = await pushed_all(pushes)
        server_cpu = (cpu_seconds(server_pids) - server_cpu) / arguments.messages * 1000
        machine_cpu = (machine_cpu_seconds() - machine_cpu) / arguments.messages * 1000
        burst = [latency for _, latency in pushes.latencies]
        burst_median, burst_p99 = milliseconds(burst)
        ack_median, ack_p99 = milliseconds(pushes.acks)
        print(
            f"{arguments.messages} messages at {arguments.rate:g}/s: {len(burst)} pushed, "
            f"median {burst_median:.1f} ms, p99 {burst_p99:.1f} ms, "
            f"max {max(burst, default=0) * 1000:.1f} ms; "
            f"the webhooks answered in median {ack_median:.1f} ms, p99 {ack_p99:.1f} ms; CPU per message: "
            f"web server {server_cpu:.1f} ms, the whole machine {machine_cpu:.1f} ms"
        )

        pushes.latencies.clear()
        sustained_count = int(arguments.sustained_seconds * arguments.sustained_rate)
        rss_samples = [resident_bytes(server_pids)]
        sending = asyncio.create_task(
            send_messages(
                http, url, pushes, assigned, customers_from(20 + arguments.messages, sustained_count),
                rate=arguments.sustained_rate, tag=f"sustained-{time.time_ns()}",
            )
        )  # fmt: skip
        await asyncio.sleep(0.2)
        while not sending.done():
            await asyncio.wait({sending}, timeout=WINDOW_S)
            rss_samples.append(resident_bytes(server_pids))
        sustained_start, sustained_refused = sending.result()
        sustained_missed = await pushed_all(pushes)
        rss_samples.append(resident_bytes(server_pids))
        windows: dict[int, list[float]] = defaultdict(list)
        for sent_at, latency in pushes.latencies:
            windows[int((sent_at - sustained_start) // WINDOW_S)].append(latency)
        for window in sorted(windows):
            median, p99 = milliseconds(windows[window])
            print(
                f"sustained {window * WINDOW_S:.0f}-{(window + 1) * WINDOW_S:.0f} s: "
                f"{len(windows[window])} pushed, median {median:.1f} ms, p99 {p99:.1f} ms"
            )
        sustained = [latency for _, latency in pushes.latencies]
        for agent in agents:
            await agent.close()

    half = arguments.sustained_seconds / 2
    early = [latency for sent_at, latency in pushes.latencies if sent_at - sustained_start < half]
    late = [latency for sent_at, latency in pushes.latencies if sent_at - sustained_start >= half]
    (early_median, early_p99), (late_median, late_p99) = milliseconds(early), milliseconds(late)
    rss_start, rss_end = rss_samples[0] / MB, rss_samples[-1] / MB
    # Growth that matters: the server falling behind moves the median, not only the odd slow
    # message (one slow message is a window's p99 at this rate); memory up by a tenth.
    latency_grows = late_median > early_median * 1.5 and late_median - early_median > 5
    memory_grows = rss_end > rss_start * 1.1
    print(
        f"sustained {arguments.sustained_seconds:g} s at {arguments.sustained_rate:g}/s: latency "
        f"{'grows' if latency_grows else 'does not grow'} (median {early_median:.1f} ms, p99 "
        f"{early_p99:.1f} ms in the first half; median {late_median:.1f} ms, p99 {late_p99:.1f} ms in "
        f"the second); the web server's memory {'grows' if memory_grows else 'does not grow'} "
        f"({rss_start:.0f} MB → {rss_end:.0f} MB; every 10 s: "
        f"{', '.join(f'{sample / MB:.0f}' for sample in rss_samples)})"
    )
    sustained_median, sustained_p99 = milliseconds(sustained)
    return {
        "inbox_agents": len(agent_ids),
        "inbox_conversations": conversations,
        "inbox_push_count": len(burst),
        "inbox_push_missed": warm_missed + burst_missed + sustained_missed,
        "inbox_push_misrouted": pushes.misrouted,
        "webhooks_refused": refused + burst_refused + sustained_refused,
        "inbox_sustained_count": len(sustained),
        "inbox_sustained_median_ms": sustained_median,
        "inbox_sustained_p99_ms": sustained_p99,
        "inbox_sustained_first_half_median_ms": early_median,
        "inbox_sustained_second_half_median_ms": late_median,
        "inbox_sustained_latency_grows": int(latency_grows),
        "inbox_server_rss_start_mb": rss_start,
        "inbox_server_rss_end_mb": rss_end,
        "inbox_sustained_memory_grows": int(memory_grows),
        "inbox_webhook_ack_p99_ms": ack_p99,
        "inbox_push_median_ms": burst_median,
        "inbox_push_p99_ms": burst_p99,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--conversations", type=int, default=500, help="open, assigned across the agents")
    parser.add_argument("--messages", type=int, default=300, help="customer messages measured")
    parser.add_argument("--rate", type=float, default=50.0, help="their webhooks a second")
    parser.add_argument("--sustained-seconds", type=float, default=60.0)
    parser.add_argument("--sustained-rate", type=float, default=20.0, help="webhooks a second")
    arguments = parser.parse_args()
    chat_limit = math.ceil(arguments.conversations / arguments.agents) + 5
    # Nothing here may reach Meta: a send the worker tries (a read receipt) fails at once.
    os.environ.setdefault("WHATSAPP_GRAPH_URL", "http://127.0.0.1:9/v23.0")
    with web_server() as base_url, worker_running():
        agent_ids, session_keys = prepare_agents(arguments.agents, chat_limit=chat_limit)
        figures = asyncio.run(
            run(base_url, agent_ids, session_keys, conversations=arguments.conversations, arguments=arguments)
        )
    print_figures(figures)


if __name__ == "__main__":
    main()
