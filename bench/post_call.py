"""After the call, at contact-center volume: do transcripts and summaries keep up with the calls?

Runs the product's own processes against DATABASE_URL and REDIS_URL (PostgreSQL and Redis are the
figures that matter; the embedded SQLite works too): the web server (uvicorn, DEBUG off), the
`media` process, the `worker` (`benchlib.worker_running`), --recordings-workers
`recordings` workers (Whisper, one process each), one `summaries` worker and `beat`. The sandbox
plays Meta in this process: a crowd of English-speaking customers who call the number at
--calls-per-minute for --minutes and talk for 20 to 40 s once answered; --agents agents, each with
a dashboard socket and a softphone leg (a real aiortc peer that talks), accept every call they are
offered and file the wrap-up at once. Every call is really bridged, recorded, transcribed and
summarised.

Figures, over the calls that ended after the first --warm-up-minutes (the transcripts and summaries
still due when the calls stop are waited for, up to --drain-minutes):
- `transcript_lag_p95_s`, `summary_lag_p95_s`: from a call's end to its transcript, and to its summary;
- `post_call_done_per_min`: summaries done a minute while the calls came (after the warm-up);
- `post_call_sustained_calls_per_min_per_core`: the calls a minute the recordings workers kept within
  60 s (p95 of both lags), per core they were given (the CPU time they used while the calls came, in
  cores: `cores_recordings_<n>`): the rate run when it was kept, else the rate they did keep up with
  (`post_call_done_per_min`), which is then an upper bound;
- `transcription_cpu_s_per_call`: the workers' CPU seconds per call done while the calls came;
- per process, the cores it used while the calls came (`cores_<process>`): the simulated customers
  and agents (`cores_bench_and_sandbox`) share this machine with the product;
- `recording_bytes_per_call_minute`: the recordings' size (Ogg Opus) over their length;
- per process, its resident memory at the end and its growth over the last five minutes of calls
  (`memory_growth_last_5_min_mib_<process>`: the slope of the samples' least-squares line, sampled
  every 15 s).

    DATABASE_URL=postgres://127.0.0.1/switchboard REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/post_call.py [--calls-per-minute 30] [--minutes 10] [--recordings-workers 2]

Ends with one `name=value` line per figure.
"""

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import benchlib
from benchlib import ROOT, percentile, print_figures, product_process, server_environment, stop, web_server
from ring_latency import prepare_agents

AGENT_SPEECH = ROOT / "whatsapp" / "sandbox" / "audio" / "agent" / "hello.wav"  # 4.5 s of speech, 2 s pause
LAG_GOAL_S = 60.0
MEMORY_EVERY_S = 15.0


@dataclass
class Running:
    """A process this script did not start itself (the web server), to sample its memory."""

    pid: int


def drop_queued(queue: str) -> None:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(queue, f"{queue}.recordings", f"{queue}.summaries")
    client.close()


def celery(queue: str, name: str) -> list[str]:
    return [sys.executable, "-m", "celery", "--app", "config", "worker", "--loglevel", "WARNING",
            "--concurrency", "1", "--queues", queue, "--hostname", f"{name}@%h"]  # fmt: skip


class Agent(benchlib.AgentSocket):
    """An agent who takes every call offered, talks through a softphone leg, and files at once."""

    def __init__(self, http, base_url: str, session_key: str) -> None:
        super().__init__(http, base_url, session_key)
        self.legs: dict[int, object] = {}
        self.offers: dict[int, str] = {}
        self.answered = 0

    def on_frame(self, frame: dict) -> None:
        kind, call_id = frame.get("type"), frame.get("call_id")
        if kind == "call.offered":
            self.send({"type": "call.accept", "call_id": call_id})
        elif kind == "call.accept.result" and frame.get("is_won"):
            asyncio.get_running_loop().create_task(self._offer_leg(call_id))
        elif kind == "call.media_answer" and call_id in self.legs and frame.get("sdp"):
            self.offers.pop(call_id, None)
            asyncio.get_running_loop().create_task(self.legs[call_id].accept_answer(frame["sdp"]))
        elif kind == "error" and frame.get("code") == "media_not_ready" and self.offers:
            # As the softphone does: the media process had not taken the call yet, the offer goes again.
            for waiting, sdp in self.offers.items():
                asyncio.get_running_loop().call_later(0.25, self.send, self._offer(waiting, sdp))
        elif kind == "call.media_answer" and frame.get("is_ready") is False and call_id in self.offers:
            asyncio.get_running_loop().call_later(0.25, self.send, self._offer(call_id, self.offers[call_id]))
        elif kind == "call.media_answer" and frame.get("error"):
            print(f"call {call_id}: no audio ({frame['error']})", flush=True)
        elif kind == "call.ended":
            self.offers.pop(call_id, None)
            leg = self.legs.pop(call_id, None)
            if leg is not None:
                asyncio.get_running_loop().create_task(leg.close())
            self.send({"type": "call.wrap_up", "call_id": call_id, "disposition": "resolved",
                       "notes": "Answered.", "next_status": "available"})  # fmt: skip

    def send(self, frame: dict) -> None:
        asyncio.get_running_loop().create_task(self.socket.send_json(frame))

    async def _offer_leg(self, call_id: int) -> None:
        from whatsapp.sandbox.media import CustomerMedia

        leg = CustomerMedia(play=AGENT_SPEECH, record_to=None, loop=True)
        self.legs[call_id] = leg
        self.answered += 1
        self.offers[call_id] = await leg.create_offer()
        await self.socket.send_json(self._offer(call_id, self.offers[call_id]))

    @staticmethod
    def _offer(call_id: int, sdp: str) -> dict:
        return {"type": "call.media_offer", "call_id": call_id, "sdp": sdp}


def memory_sample(
    processes: dict[str, subprocess.Popen], samples: dict[str, list[tuple[float, int, float]]]
) -> None:
    """Each process's resident memory and the CPU time it has used so far, now."""
    now = time.monotonic()
    for name, process in processes.items():
        family = [process.pid]
        samples.setdefault(name, []).append(
            (now, benchlib.resident_bytes(family), benchlib.cpu_seconds(family))
        )
    # This process alone: its children are the product's processes, sampled above.
    own = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    samples.setdefault("bench_and_sandbox", []).append((now, own, time.process_time()))


async def run(arguments: argparse.Namespace, base_url: str, sandbox_thread, processes, session_keys) -> dict:
    from whatsapp.sandbox.load import add_crowd, keep_calling

    sandbox = sandbox_thread.sandbox
    crowd = sandbox_thread.call(add_crowd, sandbox, count=arguments.agents * 3, regions=("GB",))
    memory: dict[str, list[tuple[float, int, float]]] = {}
    async with aiohttp.ClientSession() as http:
        agents = [Agent(http, base_url, key) for key in session_keys]
        for agent in agents:
            await agent.open()
        await asyncio.wait_for(asyncio.gather(*(agent.is_available.wait() for agent in agents)), 30)
        stop_calling = asyncio.Event()
        calling = asyncio.run_coroutine_threadsafe(
            keep_calling(crowd, [benchlib.NUMBER_ID], calls_per_minute=arguments.calls_per_minute,
                         talk_s=(20, 40), stop=stop_calling, seed=7),
            sandbox_thread.loop,
        )  # fmt: skip
        started = time.monotonic()
        calls_end = started + arguments.minutes * 60
        while time.monotonic() < calls_end:
            memory_sample(processes, memory)
            elapsed_min, answered = (time.monotonic() - started) / 60, sum(agent.answered for agent in agents)
            sizes = ", ".join(f"{name} {values[-1][1] / 2**20:.0f} MiB" for name, values in memory.items())
            print(f"{elapsed_min:5.1f} min: {answered} answered; {sizes}", flush=True)
            await asyncio.sleep(MEMORY_EVERY_S)
        sandbox_thread.loop.call_soon_threadsafe(stop_calling.set)
        calling.result(timeout=30)
        await asyncio.sleep(70)  # the last calls' talk ends
        for agent in agents:
            await agent.close()
    return {"started": started, "calls_end": calls_end, "memory": memory}


def lags(since, until, drain_s: float) -> tuple[list[float], list[float], list[tuple], int]:
    """Each answered call that ended in [since, until]: its transcript's and its summary's lag (seconds
    from the call's end; infinite when not done after the drain)."""
    from calls.models import Call
    from recordings.models import Recording, Summary

    calls = Call.objects.filter(ended_at__gte=since, ended_at__lte=until, agent__isnull=False).exclude(
        talk_seconds=None
    )
    deadline = time.monotonic() + drain_s
    while time.monotonic() < deadline:
        waiting = Recording.objects.filter(call__in=calls, status__in=Recording.IN_PROGRESS).count()
        if not waiting:
            break
        print(f"waiting for {waiting} recordings' transcripts and summaries", flush=True)
        time.sleep(15)
    rows = calls.values_list("ended_at", "transcript__created_at", "summary__created_at")
    transcript_lags = [(t - e).total_seconds() if t else float("inf") for e, t, _ in rows]
    summary_lags = [(s - e).total_seconds() if s else float("inf") for e, _, s in rows]
    sizes = list(
        Recording.objects.filter(call__in=calls, duration_s__gt=0).values_list("size_bytes", "duration_s")
    )
    done_while_calling = Summary.objects.filter(created_at__gte=since, created_at__lte=until).count()
    return transcript_lags, summary_lags, sizes, done_while_calling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls-per-minute", type=float, default=30.0)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warm-up-minutes", type=float, default=2.0)
    parser.add_argument("--drain-minutes", type=float, default=10.0)
    parser.add_argument("--recordings-workers", type=int, default=2)
    parser.add_argument("--agents", type=int, default=30)
    arguments = parser.parse_args()
    os.environ.update(server_environment())
    os.environ.setdefault("MEDIA_HOST_ADDRESSES", "127.0.0.1")
    os.environ.setdefault("MEDIA_ICE_SERVERS", "")
    import django

    django.setup()
    from django.utils import timezone

    from whatsapp.sandbox.server import SandboxThread

    (ROOT / "var").mkdir(exist_ok=True)
    sandbox_thread = SandboxThread(webhook_url=None, app_secret=benchlib.APP_SECRET, token="bench-token")
    with sandbox_thread as sandbox:
        os.environ["WHATSAPP_GRAPH_URL"] = sandbox.graph_url
        sandbox_thread.call(sandbox.add_number, phone_number_id=benchlib.NUMBER_ID, waba_id=benchlib.WABA_ID,
                            display_phone_number="+44 20 7946 0000")  # fmt: skip
        with web_server() as base_url:
            sandbox.sender.url = f"{base_url}/webhooks/whatsapp/"
            queue = benchlib.CELERY_QUEUE
            drop_queued(queue)  # what an earlier bench left queued is not this run's work
            stack = contextlib.ExitStack()
            processes: dict = {"web": Running(benchlib.server_pids[0])}
            processes["worker"] = stack.enter_context(
                benchlib.worker_running()
            )  # as the other benches run it
            processes["media"] = product_process("post-call-media", [sys.executable, "manage.py", "media"])
            for index in range(arguments.recordings_workers):
                processes[f"recordings_{index}"] = product_process(
                    f"post-call-recordings-{index}", celery(f"{queue}.recordings", f"recordings-{index}")
                )
            processes["summaries"] = product_process(
                "post-call-summaries", celery(f"{queue}.summaries", "summaries")
            )
            beat = ["beat", "--loglevel", "WARNING", "--schedule", str(ROOT / "var" / "bench-beat")]
            processes["beat"] = product_process(
                "post-call-beat", [sys.executable, "-m", "celery", "--app", "config", *beat]
            )
            try:
                started_at = timezone.now()
                session_keys = prepare_agents(
                    arguments.agents, "Post-call bench", ring_timeout_s=30, max_wait_s=300, wrap_up_s=0
                )
                result = asyncio.run(run(arguments, base_url, sandbox_thread, processes, session_keys))
                since = started_at + timezone.timedelta(minutes=arguments.warm_up_minutes)
                until = started_at + timezone.timedelta(minutes=arguments.minutes)
                measured = lags(since, until, arguments.drain_minutes * 60)
            finally:
                stop({name: process for name, process in processes.items() if name not in ("web", "worker")})
                stack.close()
    figures = summarise(arguments, result, *measured)
    print_figures(figures)


def summarise(arguments, result, transcript_lags, summary_lags, sizes, done_while_calling) -> dict:
    minutes = arguments.minutes - arguments.warm_up_minutes
    transcript_p95, summary_p95 = percentile(transcript_lags, 0.95), percentile(summary_lags, 0.95)
    done_per_minute = done_while_calling / minutes
    kept = transcript_p95 < LAG_GOAL_S and summary_p95 < LAG_GOAL_S
    warm = result["started"] + arguments.warm_up_minutes * 60
    cores = {name: cores_used(values, since=warm) for name, values in result["memory"].items()}
    recordings_cores = sum(used for name, used in cores.items() if name.startswith("recordings_"))
    figures = {
        "calls_measured": len(summary_lags),
        "calls_answered_per_min": len(summary_lags) / minutes,
        "transcript_lag_median_s": statistics.median(transcript_lags) if transcript_lags else float("nan"),
        "transcript_lag_p95_s": transcript_p95,
        "summary_lag_p95_s": summary_p95,
        "post_call_done_per_min": done_per_minute,
        "post_call_sustained_calls_per_min_per_core": (
            (arguments.calls_per_minute if kept else done_per_minute) / recordings_cores
            if recordings_cores
            else 0.0
        ),
        "transcription_cpu_s_per_call": (
            recordings_cores * minutes * 60 / done_while_calling if done_while_calling else float("nan")
        ),
        "recording_bytes_per_call_minute": (
            sum(size for size, _ in sizes) / sum(seconds for _, seconds in sizes) * 60 if sizes else 0
        ),
    }
    last_five = result["calls_end"] - 5 * 60
    for name, values in result["memory"].items():
        window = [(at, rss) for at, rss, _ in values if at >= last_five]
        figures[f"memory_mib_{name}"] = values[-1][1] / 2**20
        figures[f"memory_growth_last_5_min_mib_{name}"] = growth_mib(window)
    for name, used in cores.items():
        figures[f"cores_{name}"] = used
    return figures


def cores_used(samples: list[tuple[float, int, float]], *, since: float) -> float:
    """The cores a process kept busy from `since` to its last sample: CPU seconds over seconds."""
    window = [(at, cpu) for at, _, cpu in samples if at >= since]
    if len(window) < 2:
        return 0.0
    return (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])


def growth_mib(samples: list[tuple[float, int]]) -> float:
    """The trend of a process's resident memory over five minutes of samples, in MiB: the slope of
    their least-squares line. A worker's memory rises and falls with the work in hand (a recording
    decoded and transcribed), so the first and the last sample alone would say more of the moments
    they fell on than of the trend."""
    if len(samples) < 2:
        return 0.0
    times, sizes = zip(*samples, strict=True)
    return statistics.linear_regression(times, sizes).slope * 5 * 60 / 2**20


if __name__ == "__main__":
    main()
