"""What the bench scripts share: the web process as production runs it, Meta's signed webhooks,
the media hand-offs taken off their channel, and percentiles. Not a test helper: bench/ only."""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

APP_SECRET = "bench-app-secret"
WABA_ID, NUMBER_ID, BUSINESS = "900000000000001", "900000000000002", "442079460000"
# The bench's own Celery queue: timers the web process schedules are dropped, not left for a worker.
CELERY_QUEUE = "bench-not-consumed"
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment() -> dict[str, str]:
    """DEBUG off, as in production: no per-query debug bookkeeping. Served on plain HTTP over
    loopback, with no TLS proxy in front: no redirect to HTTPS and cookies sent over HTTP."""
    return {
        **os.environ,
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + "0123456789abcdef" * 4,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SECURE_HSTS_SECONDS": "0",
        "WHATSAPP_TOKEN": "bench-token",
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "bench-verify-token",
        "RECORDING_KEYS": "bench:" + base64.b64encode(b"bench-recording-key-32-bytes-ok!").decode(),
        "CELERY_QUEUE": CELERY_QUEUE,
    }


@contextlib.contextmanager
def web_server() -> Iterator[str]:
    """This process set up as the web process is (same settings, so a session made here is valid
    there), Redis as configured (the bundled one started if need be), the database migrated, and
    the web server (uvicorn) serving on a free port. Yields its base URL; stops all of it on exit."""
    os.environ.update(server_environment())
    import django

    django.setup()
    from django.conf import settings

    from core.processes import redis_while_needed

    database = settings.DATABASES["default"]
    print(f"database: {database['ENGINE'].rsplit('.', 1)[-1]} {database['NAME']}")
    with redis_while_needed():
        port = free_port()
        server = start_server(port)
        server_pids[:] = [server.pid]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_server(server)


server_pids: list[int] = []  # the web server's process, while `web_server()` runs


@contextlib.contextmanager
def worker_running() -> Iterator[subprocess.Popen]:
    """The Procfile's `worker` (Celery on the bench's default queue, two processes), which handles
    Meta's deliveries other than calls' as production does (WEBHOOK_HANDLE_IN_WORKER); call it
    within `web_server()`. Stopped on exit: a warm shutdown (the task in hand is finished), and a
    worker still busy after 30 s (on a backlog an earlier run left in the database, say) is killed
    with its pool rather than left running."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "--app",
        "config",
        "worker",
        "--loglevel",
        "WARNING",
        "--concurrency",
        "2",
    ]
    environment = {**server_environment(), "WEBHOOK_HANDLE_IN_WORKER": "true"}
    # A session of its own: should it not stop, it is killed with its pool.
    worker = subprocess.Popen(command, cwd=ROOT, env=environment, start_new_session=True)
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            print("the worker did not stop within 30 s: killed", file=sys.stderr)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def product_process(name: str, command: list[str], **environment: str) -> subprocess.Popen:
    """One of the Procfile's processes, in a session of its own (stopped with its children), as the
    bench server runs them (`server_environment`); what it writes goes to var/bench-<name>.log."""
    (ROOT / "var").mkdir(exist_ok=True)
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**server_environment(), **environment},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=(ROOT / "var" / f"bench-{name}.log").open("w"),
    )


def stop(processes: dict[str, subprocess.Popen]) -> None:
    """A warm shutdown of each (the task in hand is finished); killed with its children if still
    running after 30 s."""
    for process in processes.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _family(pids: list[int]) -> Iterator[tuple[Path, list[str]]]:
    """Each of the processes and their children (Linux /proc): its folder and its stat's fields
    after the command's name."""
    family = set(pids)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(entry.name) in family or int(fields[1]) in family:
                    yield entry, fields


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user and system) the processes and their children have used so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    return sum((int(fields[11]) + int(fields[12])) / tick for _, fields in _family(pids))


def resident_bytes(pids: list[int]) -> int:
    """Resident memory (RSS) of the processes and their children now (Linux /proc)."""
    page, total = os.sysconf("SC_PAGE_SIZE"), 0
    for entry, _ in _family(pids):
        with contextlib.suppress(OSError, IndexError):
            total += int((entry / "statm").read_text().split()[1]) * page
    return total


def machine_cpu_seconds() -> float:
    """CPU time every process of this machine has used so far, all cores together (Linux /proc/stat):
    the database, Redis and this script share the cores with the server."""
    user, nice, system, _idle, _iowait, irq, softirq, steal, *_ = Path("/proc/stat").read_text().split()[1:]
    return sum(int(value) for value in (user, nice, system, irq, softirq, steal)) / os.sysconf("SC_CLK_TCK")


def print_figures(figures: dict[str, float | int]) -> None:
    """One `name=value` line per figure, as every bench script ends."""
    for name, value in figures.items():
        print(f"{name}={value:.1f}" if isinstance(value, float) else f"{name}={value}")


def start_server(port: int) -> subprocess.Popen:
    """Migrate, then `uvicorn config.asgi:application` as the Procfile runs it (WEB_WORKERS
    processes, 2 by default: one per core here) on 127.0.0.1:port."""
    environment = server_environment()
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
    subprocess.run(migrate, cwd=ROOT, env=environment, check=True)
    from core.processes import web_server_command

    workers = int(environment.get("WEB_WORKERS", "2"))
    server = subprocess.Popen(web_server_command(port=port, workers=workers), cwd=ROOT, env=environment)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise SystemExit("the web server did not start") from None
            time.sleep(0.1)


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=20)
    drop_bench_tasks()


def drop_bench_tasks() -> None:
    """Timers the web process queued for Celery during the run: nobody will run them."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(CELERY_QUEUE)
    client.close()


def prepare_number(queue_name: str = "Bench", **queue_fields):
    """The business number the deliveries are for, with a queue: calls to it are really handled."""
    from agents.models import Queue
    from whatsapp.models import BusinessNumber

    number, _ = BusinessNumber.objects.get_or_create(
        phone_number_id=NUMBER_ID,
        defaults={"waba_id": WABA_ID, "display_phone_number": "+44 20 7946 0000", "country": "GB"},
    )
    from django.utils import timezone

    from calls.models import Call, LiveCallCount

    # Calls an earlier, interrupted run left live would hold agents and slots: end them.
    Call.objects.filter(business_number=number, status__in=Call.LIVE_STATUSES).update(
        status=Call.Status.ENDED, end_reason=Call.EndReason.FAILED, ended_at=timezone.now(), offered_to=None
    )
    LiveCallCount.objects.filter(business_number=number).update(live=0)
    Queue.objects.exclude(name=queue_name).filter(business_numbers=number).delete()
    queue, _ = Queue.objects.update_or_create(name=queue_name, defaults=queue_fields)
    queue.business_numbers.add(number)
    return queue


def signed_in_session_key(user) -> str:
    """A session of `user` signed in, as the sign-in page makes one: its key, for the session cookie."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def envelope(field_name: str, value: dict) -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": field_name, "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": BUSINESS, "phone_number_id": NUMBER_ID},
            **value,
        }}]}],
    }  # fmt: skip


def _call(call_id: str, customer: str, **event: object) -> dict:
    now = str(int(time.time()))
    call = {"id": call_id, "from": customer, "to": BUSINESS, "timestamp": now, "direction": "USER_INITIATED"}
    contacts = [{"profile": {"name": "Bench"}, "wa_id": customer}]
    return envelope("calls", {"contacts": contacts, "calls": [call | event]})


def call_connect(call_id: str, customer: str) -> dict:
    return _call(call_id, customer, event="connect", session={"sdp_type": "offer", "sdp": SDP})


def call_terminate(call_id: str, customer: str) -> dict:
    now = str(int(time.time()))
    return _call(
        call_id, customer, event="terminate", status="COMPLETED", start_time=now, end_time=now, duration=30
    )


def signed(payload: dict) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}


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


def post_client(connections: int = 300):
    """The HTTP client of the bench scripts' agents' sockets and of their posts that are not timed at
    hundreds a second (those go through a `Poster`): aiohttp, `connections` at most.
    Not httpx: its pool scans every waiting request each time one finishes (quadratic in the
    requests in flight), which at a few hundred requests a second took this process' whole core
    and showed as seconds of the server's "latency" while the server idled."""
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections), timeout=aiohttp.ClientTimeout(total=60)
    )


class Poster:
    """Signed deliveries POSTed as Meta sends them, over kept-alive HTTP/1.1 connections (up to
    `connections` at once), each request's bytes built before it is due (`request`).

    The bench sends from the server's own machine, so every CPU millisecond the sender spends is
    taken from the server under test. aiohttp's client spent about 0.4 ms of CPU a request at 400
    a second (building the request, its headers and its response objects): this writes the
    prepared bytes and reads back the status line and the body's length, no more."""

    KEEP_IDLE_S = 2.0

    def __init__(self, url: str, *, connections: int = 1000, timeout_s: float = 60.0) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port or 80, parts.path or "/"
        self.authority = parts.netloc  # the Host header
        self.timeout_s = timeout_s
        self.slots = asyncio.Semaphore(connections)
        self.idle: list[_Exchange] = []

    def request(self, body: bytes, headers: dict[str, str]) -> bytes:
        head = [f"POST {self.path} HTTP/1.1", f"Host: {self.authority}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body

    async def post(self, request: bytes) -> int:
        """The answer's status code; raises OSError or TimeoutError when none came."""
        async with self.slots:
            exchange = self._kept() or await self._open()
            try:
                async with asyncio.timeout(self.timeout_s):
                    status = await exchange.send(request)
            except BaseException:
                exchange.close()
                raise
            if exchange.is_open:
                exchange.idle_since = time.monotonic()
                self.idle.append(exchange)
            return status

    def _kept(self) -> "_Exchange | None":
        """The connection used last, if the server is still keeping it: one idle for longer than
        KEEP_IDLE_S is closed here, before the server (uvicorn: after 5 s) may close it while a
        request is on its way, which would fail that request."""
        while self.idle:
            exchange = self.idle.pop()
            if exchange.is_open and time.monotonic() - exchange.idle_since < self.KEEP_IDLE_S:
                return exchange
            exchange.close()
        return None

    async def _open(self) -> "_Exchange":
        _, exchange = await asyncio.get_running_loop().create_connection(_Exchange, self.host, self.port)
        return exchange

    def close(self) -> None:
        for exchange in self.idle:
            exchange.close()
        self.idle.clear()


class _Exchange(asyncio.Protocol):
    """One kept-alive connection of a `Poster`: one request at a time, its answer read by the
    Content-Length the server gives (the webhook's answers always carry one)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future | None = None
        self.is_open = True
        self.idle_since = 0.0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, request: bytes) -> asyncio.Future:
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.answer

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            self._fail(ConnectionError("an answer without a Content-Length"))
            return
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(int(lines[0].split(b" ", 2)[1]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False
        self._fail(exc or ConnectionError("the server closed the connection"))

    def _fail(self, error: Exception) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(error)
        self.close()

    def close(self) -> None:
        self.is_open = False
        if self.transport is not None:
            self.transport.close()


async def open_loop(
    sends: list[tuple[float, Callable[[float], Awaitable[None]]]], *, lead_s: float = 0.5
) -> None:
    """Start each send at its offset (seconds) from a start `lead_s` from now, as Meta does,
    whether or not the ones before were answered, and pass it that due time (`time.perf_counter()`,
    which its latency counts from); return once all are done. One task a send, made when it is due:
    tasks made up front (tens of thousands for a minute of a campaign) each take a first step
    before the event loop gets to the first send, and the sends came out up to 0.7 s late, which
    the latencies counted as the server's."""
    ordered = sorted(sends, key=lambda timed: timed[0])
    start = time.perf_counter() + lead_s
    started = []
    for offset, send in ordered:
        due = start + offset
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        started.append(asyncio.create_task(send(due)))
    await asyncio.gather(*started)


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `share` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * share) - 1)]


class AgentSocket:
    """One agent's dashboard socket, as the browser opens it with the agent's session: goes
    available, answers the server's `presence.ping` with a heartbeat (as the dashboard does),
    follows the agent's status, and hands every other frame to `on_frame`."""

    def __init__(self, http, base_url: str, session_key: str) -> None:
        self.http, self.base_url, self.session_key = http, base_url, session_key
        self.is_available = asyncio.Event()
        self.socket = None
        self.reader: asyncio.Task | None = None

    async def open(self) -> None:
        self.socket = await self.http.ws_connect(
            self.base_url.replace("http", "ws") + "/ws/agent/",
            headers={"Origin": self.base_url, "Cookie": f"sessionid={self.session_key}"},
        )
        self.reader = asyncio.create_task(self._read())
        await self.socket.send_json({"type": "presence.heartbeat"})
        await self.socket.send_json({"type": "presence.set", "status": "available"})

    def on_frame(self, frame: dict) -> None:
        """A frame other than the agent's status."""

    async def _read(self) -> None:
        async for message in self.socket:
            if message.type != aiohttp.WSMsgType.TEXT:  # an error: the socket is closing
                continue
            frame = message.json()
            if frame.get("type") == "presence.ping":
                await self.socket.send_json({"type": "presence.heartbeat"})
            elif frame.get("type") == "agent.status":
                if frame.get("status") == "available":
                    self.is_available.set()
                else:
                    self.is_available.clear()
            else:
                self.on_frame(frame)

    async def close(self) -> None:
        await self.socket.close()
        await self.reader


class Relay:
    """A TCP relay on a port of its own, in a thread of its own, in front of a server (PostgreSQL, in
    bench/faults.py) or several, each new connection to the next in turn (the web hosts, in
    bench/cluster.py: a load balancer, as a TCP proxy is), listening on `listen_host`.
    `cut(seconds)` is the server restarting as its clients see it: every connection through the
    relay is closed at once, and new ones are refused (closed as soon as taken) for `seconds`;
    after that it relays again. `connections_to` counts the connections relayed to each server."""

    def __init__(self, *targets: tuple[str, int], listen_host: str = "127.0.0.1") -> None:
        self.targets = list(targets)
        self.turn = itertools.cycle(self.targets)
        self.connections_to = dict.fromkeys(self.targets, 0)
        self.loop = asyncio.new_event_loop()
        self.refusing_until = 0.0
        self.connections: set[asyncio.StreamWriter] = set()
        ready = threading.Event()
        self.port = 0

        async def start() -> None:
            server = await asyncio.start_server(self._relay, listen_host, 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()

        self.thread = threading.Thread(target=self.loop.run_forever, name="relay", daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(start(), self.loop)
        ready.wait(10)

    def cut(self, seconds: float) -> None:
        async def cut() -> None:
            self.refusing_until = time.monotonic() + seconds
            for writer in list(self.connections):
                writer.transport.abort()
            self.connections.clear()

        asyncio.run_coroutine_threadsafe(cut(), self.loop).result(10)

    async def _relay(self, client_reader, client_writer) -> None:
        if time.monotonic() < self.refusing_until:
            client_writer.transport.abort()
            return
        for _ in self.targets:  # a server that refuses is passed over for the next
            target = next(self.turn)
            try:
                server_reader, server_writer = await asyncio.open_connection(*target)
                break
            except OSError:
                continue
        else:
            client_writer.transport.abort()
            return
        self.connections_to[target] += 1
        pair = {client_writer, server_writer}
        self.connections |= pair

        async def pipe(reader, writer) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            for end in pair:
                end.transport.abort()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))
        self.connections -= pair
