"""Ring latency: from Meta's signed `connect` webhook to the ring frame on a free agent's socket.

Starts the web process as production runs it (`benchlib.start_server`: uvicorn, DEBUG off) against
DATABASE_URL (the embedded SQLite when unset; PostgreSQL's figures are the ones that matter), signs
AGENTS agents in (one WebSocket each, as the dashboard holds one) and makes them available, then:

1. one call a second for --steady-seconds (an ordinary day; 100 by default, so that p99 is not
   simply the slowest), and
2. --burst calls spread evenly over one second (a campaign's callers all tapping Call at once),

each call from its own customer, with a free agent for every call. Latency runs from each webhook's
scheduled send time (open loop: a slow server cannot hide queueing) to the moment the agent's
socket receives `call.offered`. Agents are rung by the webhook itself, while a media process
answers the customer's leg in parallel; this script takes those hand-offs off the media channel as
media processes would, so that no WebRTC work shares the machine's two cores with the web process
(bench/bridged_calls.py measures the media side). After each round the customers hang up (Meta's
terminate webhooks), which frees the agents.

    .venv/bin/python bench/ring_latency.py [--burst 200] [--steady-seconds 100]

Ends with one `name=value` line per figure, among them `ring_p99_ms` (the burst's p99).
"""

import argparse
import asyncio
import statistics
import time

import aiohttp
import benchlib
from benchlib import (
    call_connect,
    call_terminate,
    cpu_seconds,
    machine_cpu_seconds,
    percentile,
    prepare_number,
    print_figures,
    server_pids,
    signed,
    take_media_hand_offs,
    web_server,
)


def prepare_agents(count: int, queue_name: str = "Ring bench", **queue_fields) -> list[str]:
    """`count` agents in the bench queue, offline, each with a signed-in session: their session keys."""
    from django.contrib.auth import get_user_model

    from agents.models import Agent, QueueMembership

    queue_fields = queue_fields or {"ring_timeout_s": 60, "max_wait_s": 600, "missed_offers_before_away": 0}
    queue = prepare_number(queue_name, **queue_fields)
    user_model = get_user_model()
    keys = []
    for index in range(count):
        user, _ = user_model.objects.get_or_create(
            username=f"bench-agent-{index}", defaults={"is_staff": False}
        )
        agent, _ = Agent.objects.get_or_create(user=user, defaults={"display_name": f"Agent {index}"})
        Agent.objects.filter(pk=agent.pk).update(status=Agent.Status.OFFLINE)
        QueueMembership.objects.get_or_create(queue=queue, agent=agent)
        keys.append(benchlib.signed_in_session_key(user))
    return keys


class AgentSocket(benchlib.AgentSocket):
    """An agent's socket that notes when each ring arrives."""

    def __init__(self, http, base_url: str, session_key: str) -> None:
        super().__init__(http, base_url, session_key)
        self.rings: dict[str, float] = {}  # caller number → when the ring frame arrived

    def on_frame(self, frame: dict) -> None:
        if frame.get("type") == "call.offered":
            self.rings[frame["caller_number"]] = time.perf_counter()


async def post_all(
    http: aiohttp.ClientSession, url: str, requests: list[tuple[bytes, dict]], times: list[float]
):
    failures = 0

    async def post(index: int) -> None:
        nonlocal failures
        await asyncio.sleep(max(0.0, times[index] - time.perf_counter()))
        body, headers = requests[index]
        async with http.post(url, data=body, headers=headers) as response:
            if response.status != 200:
                failures += 1
            await response.read()

    await asyncio.gather(*(post(index) for index in range(len(requests))))
    return failures


async def ring_round(
    http: aiohttp.ClientSession,
    base_url: str,
    agents: list[AgentSocket],
    *,
    calls: int,
    seconds: float,
    tag: str,
) -> tuple[list[float], int]:
    """`calls` calls spread evenly over `seconds`: their ring latencies (s) and how many never rang."""
    url = f"{base_url}/webhooks/whatsapp/"
    await asyncio.wait_for(asyncio.gather(*(agent.is_available.wait() for agent in agents)), 30)
    stamp = int(time.time() * 1000) % 10**7
    customers = [f"4477{stamp:07d}{index:03d}" for index in range(calls)]
    call_ids = [f"wacid.ring-{tag}-{stamp}-{index}" for index in range(calls)]
    connects = [
        signed(call_connect(call_id, customer)) for call_id, customer in zip(call_ids, customers, strict=True)
    ]
    start = time.perf_counter() + 0.3
    scheduled = [start + index * seconds / calls for index in range(calls)]
    server_cpu, bench_cpu, machine_cpu = cpu_seconds(server_pids), time.process_time(), machine_cpu_seconds()
    failures = await post_all(http, url, connects, scheduled)
    deadline = time.perf_counter() + 10
    rings: dict[str, float] = {}
    while len(rings) < calls and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
        rings = {number: at for agent in agents for number, at in agent.rings.items()}
    server_cpu, bench_cpu = cpu_seconds(server_pids) - server_cpu, time.process_time() - bench_cpu
    machine_cpu = machine_cpu_seconds() - machine_cpu
    latencies = [rings[f"+{customer}"] - scheduled[index] for index, customer in enumerate(customers)
                 if f"+{customer}" in rings]  # fmt: skip
    hang_ups = [
        signed(call_terminate(call_id, customer))
        for call_id, customer in zip(call_ids, customers, strict=True)
    ]
    failures += await post_all(http, url, hang_ups, [time.perf_counter()] * calls)
    for agent in agents:
        agent.rings.clear()
    per_call = {"web server": server_cpu, "this script": bench_cpu, "the machine": machine_cpu}
    print(
        f"round {tag}: {len(latencies)} of {calls} calls rang an agent; {failures} webhooks refused; "
        + "CPU per call: "
        + ", ".join(f"{name} {seconds / calls * 1000:.1f} ms" for name, seconds in per_call.items())
    )
    return latencies, calls - len(latencies), failures


async def run(base_url: str, session_keys: list[str], *, burst: int, steady_seconds: int) -> dict[str, float]:
    stop_taking = asyncio.Event()
    taker = asyncio.create_task(take_media_hand_offs(stop_taking))
    connector = aiohttp.TCPConnector(limit=300)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        agents = [AgentSocket(http, base_url, key) for key in session_keys]
        for start in range(0, len(agents), 50):
            await asyncio.gather(*(agent.open() for agent in agents[start : start + 50]))
        await ring_round(http, base_url, agents, calls=5, seconds=1, tag="warm")
        steady, steady_missed, steady_refused = await ring_round(
            http, base_url, agents, calls=steady_seconds, seconds=steady_seconds, tag="steady"
        )
        burst_latencies, burst_missed, burst_refused = await ring_round(
            http, base_url, agents, calls=burst, seconds=1, tag="burst"
        )
        for agent in agents:
            await agent.close()
    stop_taking.set()
    await taker
    return {
        "ring_1_per_s_median_ms": statistics.median(steady) * 1000,
        "ring_1_per_s_p99_ms": percentile(steady, 0.99) * 1000,
        "ring_burst_median_ms": statistics.median(burst_latencies) * 1000,
        "ring_burst_max_ms": max(burst_latencies) * 1000,
        "ring_missed": steady_missed + burst_missed,
        "webhooks_refused": steady_refused + burst_refused,
        "ring_p99_ms": percentile(burst_latencies, 0.99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200, help="calls arriving within one second")
    parser.add_argument(
        "--steady-seconds", type=int, default=100, help="seconds of one call a second (100 make a p99)"
    )
    arguments = parser.parse_args()
    with web_server() as base_url:
        session_keys = prepare_agents(max(arguments.burst, 5))
        figures = asyncio.run(
            run(base_url, session_keys, burst=arguments.burst, steady_seconds=arguments.steady_seconds)
        )
    print(
        f"calls: {arguments.steady_seconds} at 1/s, then {arguments.burst} within 1 s; a free agent for each"
    )
    print_figures(figures)


if __name__ == "__main__":
    main()
