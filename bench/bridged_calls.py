"""Bridged calls per core: how many recorded calls one media process relays with good audio.

The media side is what the `media` process runs for each call: a `calls.bridge.CallBridge` that
answers the customer's leg, connects the agent's leg, relays both ways and records both sides to
a two-channel WAV. It runs in its own process, pinned to one core. The other core runs the load:
for each call a customer and an agent, both real aiortc peers on loopback, each sending a steady
tone with a loud beep every second on a 20 ms grid of one clock, and timing what it receives.

For N = --start, --start + --step, ... calls at once, for --seconds each round:
- mouth-to-ear: from the moment a beep's frame is sent to the moment the other side's peer
  hands the beep's frame over (after its jitter buffer), both directions, p95 over all beeps;
- gaps: 20 ms frames of the tone that arrive silent or not at all (a gap is any such frame);
- CPU: the media process's share of its core over the round (from /proc).

A round passes with mouth-to-ear p95 < 250 ms and no gap. `bridged_calls_per_core` is the largest
N that passed. The load side is as heavy per call as the media side (two aiortc legs per call), so
its own core can run out first: the script says so (`load_cpu`), and also prints what the media
process's CPU per call implies (`bridged_calls_per_core_by_cpu`), which is only an estimate.

    .venv/bin/python bench/bridged_calls.py [--start 2] [--step 2] [--max 16] [--seconds 10]

Ends with one `name=value` line per figure, the last is `bridged_calls_per_core`.
"""

import argparse
import asyncio
import fractions
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, free_port, percentile

FRAME_S = 0.02
SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960
BEEP_EVERY = 50  # frames: one beep a second
TONE_LEVEL, BEEP_LEVEL = 0.1, 0.6
BEEP_THRESHOLD, SILENCE_THRESHOLD = 0.4, 0.02
MOUTH_TO_EAR_LIMIT_S = 0.25


def setup_django() -> None:
    os.environ.setdefault("MEDIA_HOST_ADDRESSES", "127.0.0.1")
    os.environ.setdefault("MEDIA_ICE_SERVERS", "")
    import django

    django.setup()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- The media side: bridges behind a small HTTP interface ------------------------------------


async def serve_media(port: int, recordings: Path) -> None:
    from aiohttp import web

    from calls.bridge import CallBridge

    bridges: list[CallBridge] = []

    async def call(request: web.Request) -> web.Response:
        offers = await request.json()
        bridge = CallBridge(
            call_id=str(len(bridges)),
            recording_path=recordings / f"call-{len(bridges)}.wav",
            notice=None,
            hold=None,
        )
        bridges.append(bridge)
        customer_answer = await bridge.answer_customer(offers["customer"])
        agent_answer = await bridge.connect_agent(offers["agent"])
        return web.json_response({"customer": customer_answer, "agent": agent_answer})

    async def hang_up_all(request: web.Request) -> web.Response:
        results = await asyncio.gather(*(bridge.close() for bridge in bridges))
        bridges.clear()
        return web.json_response({"recorded_s": [round(result.duration_s, 2) for result in results]})

    app = web.Application()
    app.add_routes([web.post("/call", call), web.post("/hang-up-all", hang_up_all)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


# --- The load side: customers and agents that beep and listen ----------------------------------


def make_tracks():
    import av
    import numpy as np
    from aiortc import MediaStreamTrack

    times = np.arange(FRAME_SAMPLES) / SAMPLE_RATE
    tone = np.repeat(np.round(TONE_LEVEL * 32767 * np.sin(2 * np.pi * 400 * times)), 2).astype(np.int16)
    beep = np.repeat(np.round(BEEP_LEVEL * 32767 * np.sin(2 * np.pi * 1000 * times)), 2).astype(np.int16)

    class Talker(MediaStreamTrack):
        """A 400 Hz tone in 20 ms frames on the process clock's grid; every second a 1 kHz beep frame."""

        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.slot: int | None = None
            self.beeps_sent: dict[int, float] = {}  # slot → when the frame was handed to the sender

        async def recv(self):
            self.slot = math.ceil(time.monotonic() / FRAME_S) if self.slot is None else self.slot + 1
            await asyncio.sleep(max(0.0, self.slot * FRAME_S - time.monotonic()))
            is_beep = self.slot % BEEP_EVERY == 0
            if is_beep:
                self.beeps_sent[self.slot] = time.monotonic()
            frame = av.AudioFrame.from_ndarray(
                (beep if is_beep else tone).reshape(1, -1), format="s16", layout="stereo"
            )
            frame.sample_rate = SAMPLE_RATE
            frame.pts = self.slot * FRAME_SAMPLES
            frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
            return frame

    class Listener:
        """Reads a received track: when each beep arrived, and how many frames came silent."""

        def __init__(self) -> None:
            self.beeps_heard: list[float] = []
            self.frames: list[tuple[float, float]] = []  # (arrived at, peak level)
            self.task: asyncio.Task | None = None

        def start(self, track) -> None:
            self.task = asyncio.ensure_future(self._read(track))

        async def _read(self, track) -> None:
            from aiortc.mediastreams import MediaStreamError

            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                arrived = time.monotonic()
                peak = float(np.abs(frame.to_ndarray()).max()) / 32768
                self.frames.append((arrived, peak))
                if peak > BEEP_THRESHOLD:
                    self.beeps_heard.append(arrived)

    return Talker, Listener


class Peer:
    def __init__(self, Talker, Listener) -> None:
        from aiortc import RTCPeerConnection

        from core.webrtc import rtc_configuration

        self.talker, self.listener = Talker(), Listener()
        self.connection = RTCPeerConnection(rtc_configuration())
        self.connection.addTrack(self.talker)
        self.connection.on("track", self.listener.start)

    async def offer(self) -> str:
        await self.connection.setLocalDescription(await self.connection.createOffer())
        return self.connection.localDescription.sdp

    async def accept(self, answer: str) -> None:
        from aiortc import RTCSessionDescription

        await self.connection.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def close(self) -> None:
        await self.connection.close()


def mouth_to_ear(speaker: Peer, listener: Peer, since: float, until: float) -> list[float]:
    """Each beep the speaker sent from `since` to a second before `until`, to when the listener got
    it (the first beep heard after the send and within a second: beeps are a second apart). A beep
    sent in the last second may still be on its way, so it is not counted either way."""
    heard = listener.listener.beeps_heard
    delays = []
    for sent in speaker.talker.beeps_sent.values():
        if not since <= sent < until - 1.0:
            continue
        later = [arrived - sent for arrived in heard if 0 <= arrived - sent < 1.0]
        delays.append(min(later) if later else float("inf"))
    return delays


def gaps(listener: Peer, since: float, until: float) -> int:
    """Frames of the tone missing or silent between `since` and `until` (20 ms each)."""
    frames = [(arrived, peak) for arrived, peak in listener.listener.frames if since <= arrived < until]
    silent = sum(1 for _, peak in frames if peak < SILENCE_THRESHOLD)
    missing = max(0, round((until - since) / FRAME_S) - len(frames))
    return silent + missing


async def run_round(http, base: str, calls: int, seconds: float, media_pid: int, Talker, Listener) -> dict:
    pairs = [(Peer(Talker, Listener), Peer(Talker, Listener)) for _ in range(calls)]
    for customer, agent in pairs:
        offers = {"customer": await customer.offer(), "agent": await agent.offer()}
        async with http.post(f"{base}/call", json=offers) as response:
            answers = await response.json()
        await customer.accept(answers["customer"])
        await agent.accept(answers["agent"])
    await asyncio.sleep(3)  # ICE, DTLS and the jitter buffers settle
    since, media_cpu, load_cpu = time.monotonic(), cpu_seconds(media_pid), cpu_seconds(os.getpid())
    await asyncio.sleep(seconds)
    until = time.monotonic()
    media_share = (cpu_seconds(media_pid) - media_cpu) / (until - since)
    load_share = (cpu_seconds(os.getpid()) - load_cpu) / (until - since)
    delays = []
    gap_frames = 0
    for customer, agent in pairs:
        delays += mouth_to_ear(customer, agent, since, until) + mouth_to_ear(agent, customer, since, until)
        gap_frames += gaps(agent, since + 0.5, until - 0.5) + gaps(customer, since + 0.5, until - 0.5)
    async with http.post(f"{base}/hang-up-all") as response:
        await response.json()
    for customer, agent in pairs:
        await customer.close()
        await agent.close()
    finite = [delay for delay in delays if math.isfinite(delay)]
    return {
        "calls": calls,
        "mouth_to_ear_median_ms": statistics.median(finite) * 1000 if finite else float("inf"),
        "mouth_to_ear_p95_ms": percentile(delays, 0.95) * 1000 if delays else float("inf"),
        "beeps_lost": len(delays) - len(finite),
        "gap_frames": gap_frames,
        "media_cpu": media_share,
        "load_cpu": load_share,
    }


async def ramp(arguments: argparse.Namespace, media_pid: int, port: int) -> list[dict]:
    import aiohttp

    from core.webrtc import apply_host_addresses, speed_up_audio_level

    apply_host_addresses()
    speed_up_audio_level()
    Talker, Listener = make_tracks()
    base = f"http://127.0.0.1:{port}"
    rounds = []
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.post(f"{base}/hang-up-all") as response:
                    await response.json()
                break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        for calls in range(arguments.start, arguments.max + 1, arguments.step):
            result = await run_round(http, base, calls, arguments.seconds, media_pid, Talker, Listener)
            result["passed"] = (
                result["mouth_to_ear_p95_ms"] < MOUTH_TO_EAR_LIMIT_S * 1000 and not result["gap_frames"]
            )
            rounds.append(result)
            print(
                f"{calls:3d} calls: mouth-to-ear median {result['mouth_to_ear_median_ms']:.0f} ms, "
                f"p95 {result['mouth_to_ear_p95_ms']:.0f} ms, beeps lost {result['beeps_lost']}, "
                f"gap frames {result['gap_frames']}, media CPU {result['media_cpu']:.0%}, "
                f"load CPU {result['load_cpu']:.0%} -> {'pass' if result['passed'] else 'FAIL'}",
                flush=True,
            )
            if not result["passed"]:
                break
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=int, default=2)
    parser.add_argument("--step", type=int, default=2)
    parser.add_argument("--max", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the media side, on this port
    parser.add_argument("--recordings", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    setup_django()
    cores = sorted(os.sched_getaffinity(0))
    if arguments.serve:
        asyncio.run(serve_media(arguments.serve, Path(arguments.recordings)))
        return
    if len(cores) < 2:
        raise SystemExit("needs two cores: one for the media process, one for the load")
    port = free_port()
    with tempfile.TemporaryDirectory() as recordings:
        media = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), "--recordings", recordings],
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "WARNING"},
            preexec_fn=lambda: os.sched_setaffinity(0, {cores[0]}),
        )
        os.sched_setaffinity(0, {cores[1]})
        try:
            rounds = asyncio.run(ramp(arguments, media.pid, port))
        finally:
            media.terminate()
            media.wait(timeout=20)
    passed = [result for result in rounds if result["passed"]]
    best = passed[-1] if passed else None
    print(json.dumps(rounds, default=str))
    if best is not None:
        print(f"mouth_to_ear_p95_ms={best['mouth_to_ear_p95_ms']:.0f}")
        print(f"media_cpu_per_call={best['media_cpu'] / best['calls']:.3f}")
        print(f"load_cpu={best['load_cpu']:.2f}")
        print(f"bridged_calls_per_core_by_cpu={best['calls'] / best['media_cpu']:.1f}")
    print(f"bridged_calls_per_core={best['calls'] if best else 0}")


if __name__ == "__main__":
    main()
