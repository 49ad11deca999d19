"""Bridged calls per core: how many recorded calls one media process relays with good audio.

The media side is what the `media` process runs for each call: a `calls.bridge.CallBridge` that
answers the customer's leg, connects the agent's leg, relays both ways and records both sides to
an Ogg Opus file of two streams (the packets as they came). It runs in its own process, pinned to
one core. The other core runs the load: for each call a customer and an agent, both real aiortc
peers on loopback, each sending a steady tone with a loud beep every second on a 20 ms grid of one
clock, and timing what it receives.

For N = --start, --start + --step, ... calls at once, for --seconds each round:
- mouth-to-ear: from the moment a beep's frame is sent to the moment the other side's peer
  hands the beep's frame over (after its jitter buffer), both directions, p95 over all beeps;
- gaps: 20 ms packets of the tone that never arrive (lost, or dropped by a queue or a jitter buffer),
  or whose place a packet of silence took (the relay filled in for a late one), told apart by their
  bytes: the relay forwards packets unchanged;
- CPU: the media process's share of its core over the round (from /proc);
- the recordings' size per call-minute (`recording_bytes_per_call_minute`), and as a share of the
  48 kHz 16-bit stereo WAV that recordings were before (`recording_size_of_pcm_wav`). The peers send
  Opus at 48 kbps (``core.audio.opus_encode_mono``): the size follows what the two sides send.

A round passes with mouth-to-ear p95 < 250 ms and no gap. `bridged_calls_per_core` is the largest
N that passed. The load side runs two aiortc legs per call, which send packets encoded once and decode
what they hear in the event loop; its core can still run out first: the script says so (`load_cpu`),
and also prints what the media process's CPU per call implies (`bridged_calls_per_core_by_cpu`), which
is only an estimate.

    .venv/bin/python bench/bridged_calls.py [--start 2] [--step 2] [--max 16] [--seconds 10]

Ends with one `name=value` line per figure, the last is `bridged_calls_per_core`.
"""

import argparse
import asyncio
import fractions
import gc
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
MOUTH_TO_EAR_LIMIT_S = 0.25
PCM_WAV_BYTES_PER_MINUTE = SAMPLE_RATE * 2 * 2 * 60  # what recordings took before: 48 kHz 16-bit stereo


def setup_django() -> None:
    os.environ.setdefault("LOG_LEVEL", "WARNING")
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

    from calls.bridge import CallBridge, keep_collections_short

    keep_collections_short()  # as the media command does
    bridges: list[CallBridge] = []

    async def call(request: web.Request) -> web.Response:
        offers = await request.json()
        bridge = CallBridge(
            call_id=str(len(bridges)),
            recording_path=recordings / f"call-{len(bridges)}.ogg",
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
        recorded = {
            "recorded_s": sum(result.duration_s for result in results),
            "recorded_bytes": sum(result.path.stat().st_size for result in results),
        }
        for result in results:
            result.path.unlink()
        return web.json_response(recorded)

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

    from core.audio import opus_encode_mono

    times = np.arange(FRAME_SAMPLES * BEEP_EVERY) / SAMPLE_RATE
    tone = np.round(TONE_LEVEL * 32767 * np.sin(2 * np.pi * 401 * times))
    beep = np.round(BEEP_LEVEL * 32767 * np.sin(2 * np.pi * 1000 * times[:FRAME_SAMPLES]))
    # A second of tone whose last frame is the beep, encoded once: a peer only copies packets, so that the
    # load side costs little more per call than the network stack (the media side is what is measured).
    second = np.concatenate([tone[:-FRAME_SAMPLES], beep]).astype(np.int16)
    packets = opus_encode_mono(second)
    packet_index = {payload: index for index, payload in enumerate(packets)}
    assert len(packet_index) == BEEP_EVERY, "every packet of the second must differ from the others"
    time_base = fractions.Fraction(1, SAMPLE_RATE)

    class Talker(MediaStreamTrack):
        """A 401 Hz tone in 20 ms Opus packets on the process clock's grid (each packet of a second differs,
        so that a listener knows each by its bytes); every second a 1 kHz beep."""

        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.slot: int | None = None
            self.beeps_sent: dict[int, float] = {}  # slot → when the packet was handed to the sender

        async def recv(self):
            self.slot = math.ceil(time.monotonic() / FRAME_S) if self.slot is None else self.slot + 1
            await asyncio.sleep(max(0.0, self.slot * FRAME_S - time.monotonic()))
            if self.slot % BEEP_EVERY == BEEP_EVERY - 1:
                self.beeps_sent[self.slot] = time.monotonic()
            packet = av.Packet(packets[self.slot % BEEP_EVERY])
            packet.pts = self.slot * FRAME_SAMPLES
            packet.time_base = time_base
            return packet

    class Listener:
        """What a peer hears, packet by packet as it leaves the jitter buffer. The relay forwards packets
        unchanged, so each is known by its bytes: which packet of the talker's second it is, or None for
        anything the talker never sent (the relay's silence while the talker's packet was late)."""

        def __init__(self) -> None:
            self.beeps_heard: list[float] = []
            self.packets: list[tuple[float, int | None]] = []  # (arrived at, index in the second)

        def __call__(self, payload: bytes, timestamp: int, arrived: float) -> None:
            index = packet_index.get(payload)
            self.packets.append((arrived, index))
            if index == BEEP_EVERY - 1:
                self.beeps_heard.append(arrived)

    return Talker, Listener


class Peer:
    def __init__(self, Talker, Listener) -> None:
        from aiortc import RTCPeerConnection

        from core.webrtc import receive_encoded, rtc_configuration

        self.talker, self.listener = Talker(), Listener()
        self.connection = RTCPeerConnection(rtc_configuration())
        transceiver = self.connection.addTransceiver(self.talker, direction="sendrecv")
        receive_encoded(transceiver.receiver, self.listener)

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


def gaps(listener: Peer, since: float, until: float) -> tuple[int, int]:
    """Gaps in what arrived from `since` to `until`, in 20 ms packets: (silent, skipped). Silent: a packet
    the talker never sent took a packet's place. Skipped: packets of the talker's missing between two
    that arrived (lost, or dropped by a queue or a jitter buffer), or one heard twice."""
    silent = skipped = 0
    previous: int | None = None
    for arrived, index in listener.listener.packets:
        if since <= arrived < until:
            if index is None:
                silent += 1
            elif previous is not None:
                step = (index - previous) % BEEP_EVERY
                # A packet heard twice is a glitch too; a whole second lost shows as a lost beep.
                skipped += step - 1 if step else 1
        if index is not None:
            previous = index
    return silent, skipped


async def run_round(http, base: str, calls: int, seconds: float, media_pid: int, Talker, Listener) -> dict:
    pairs = [(Peer(Talker, Listener), Peer(Talker, Listener)) for _ in range(calls)]
    for customer, agent in pairs:
        offers = {"customer": await customer.offer(), "agent": await agent.offer()}
        async with http.post(f"{base}/call", json=offers) as response:
            answers = await response.json()
        await customer.accept(answers["customer"])
        await agent.accept(answers["agent"])
    await asyncio.sleep(3)  # ICE, DTLS and the jitter buffers settle
    # The load side must not stall while it measures: a full garbage collection of its many peers stops
    # its loop long enough for packets to reach the media side too late, which would count against it.
    gc.collect()
    gc.disable()
    since, media_cpu, load_cpu = time.monotonic(), cpu_seconds(media_pid), cpu_seconds(os.getpid())
    await asyncio.sleep(seconds)
    until = time.monotonic()
    gc.enable()
    media_share = (cpu_seconds(media_pid) - media_cpu) / (until - since)
    load_share = (cpu_seconds(os.getpid()) - load_cpu) / (until - since)
    delays = []
    silent = skipped = 0
    for customer, agent in pairs:
        delays += mouth_to_ear(customer, agent, since, until) + mouth_to_ear(agent, customer, since, until)
        for listener in (customer, agent):
            listener_silent, listener_skipped = gaps(listener, since + 0.5, until - 0.5)
            silent, skipped = silent + listener_silent, skipped + listener_skipped
    async with http.post(f"{base}/hang-up-all") as response:
        recorded = await response.json()
    for customer, agent in pairs:
        await customer.close()
        await agent.close()
    finite = [delay for delay in delays if math.isfinite(delay)]
    return {
        "calls": calls,
        "mouth_to_ear_median_ms": statistics.median(finite) * 1000 if finite else float("inf"),
        "mouth_to_ear_p95_ms": percentile(delays, 0.95) * 1000 if delays else float("inf"),
        "beeps_lost": len(delays) - len(finite),
        "gap_frames": silent + skipped,
        "silent_frames": silent,
        "media_cpu": media_share,
        "load_cpu": load_share,
        "recording_bytes_per_call_minute": recorded["recorded_bytes"] / recorded["recorded_s"] * 60,
    }


async def ramp(arguments: argparse.Namespace, media_pid: int, port: int) -> list[dict]:
    import aiohttp

    from core.webrtc import apply_host_addresses

    apply_host_addresses()
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
                f"gap frames {result['gap_frames']} ({result['silent_frames']} silent), "
                f"media CPU {result['media_cpu']:.0%}, "
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
        per_minute = best["recording_bytes_per_call_minute"]
        print(f"recording_bytes_per_call_minute={per_minute:.0f}")
        print(f"recording_size_of_pcm_wav={per_minute / PCM_WAV_BYTES_PER_MINUTE:.3f}")
    print(f"bridged_calls_per_core={best['calls'] if best else 0}")


if __name__ == "__main__":
    main()
