"""Many calls through one process: its memory levels off once it has carried a few calls. The calls
run in a process of their own (the bridges and both sides' peers, on loopback), so that nothing else
this test session holds moves the figure."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CALLS = 150
AT_ONCE = 10
WARM_UP_CALLS = 25
# Measured here, from the 25th call to the 150th: the process grew by 18-22 MiB when the memory each
# call freed was left with the allocator (and went on growing), by 6.6-8.0 MiB when it was handed
# back (levelling off by the 75th call). On 2026-12-07 this machine gave 12.6 MiB in three runs of
# four, on the code of before that day's changes too: flat from the 25th call to the 125th (+2 to
# +4 MiB), then +9 MiB by the 150th, at once. The goal stays under the leak's 18. Why the last calls
# add 9 MiB that day is not yet known.
MOST_GROWTH_MIB = 16


def resident_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def calls_through_one_process(calls: int, at_once: int) -> dict[int, float]:
    """Run `calls` calls, `at_once` at a time, each answered, bridged and recorded for 2 s, then
    closed; the process's resident memory after each 25th call ends."""
    import asyncio
    import tempfile

    from calls.bridge import CallBridge
    from whatsapp.sandbox.media import CustomerMedia

    audio, prompts = ROOT / "whatsapp" / "sandbox" / "audio", ROOT / "static" / "audio"
    spool = Path(tempfile.mkdtemp())
    slots, ended, resident = asyncio.Semaphore(at_once), 0, {}

    async def one(index: int) -> None:
        nonlocal ended
        async with slots:
            bridge = CallBridge(
                call_id=str(index),
                recording_path=spool / f"call-{index}.ogg",
                notice=prompts / "notice" / "en.wav",
                hold=prompts / "hold.wav",
            )
            customer = CustomerMedia(play=audio / "customer_order.wav", record_to=None, loop=True)
            agent = CustomerMedia(play=audio / "agent" / "hello.wav", record_to=None, loop=True)
            await customer.accept_answer(await bridge.answer_customer(await customer.create_offer()))
            await customer.wait_connected(timeout_s=10)
            await bridge.start_notice_then_hold()
            await asyncio.sleep(0.5)
            await agent.accept_answer(await bridge.connect_agent(await agent.create_offer()))
            await agent.wait_connected(timeout_s=10)
            await asyncio.sleep(2)
            await customer.close()
            await agent.close()
            (await bridge.close()).path.unlink()
        ended += 1
        if ended % 25 == 0:
            resident[ended] = resident_mib()

    await asyncio.gather(*(one(index) for index in range(calls)))
    return resident


def main() -> None:
    import asyncio

    import django

    django.setup()
    print(json.dumps(asyncio.run(calls_through_one_process(CALLS, AT_ONCE))))


@pytest.mark.e2e
def test_a_process_that_carries_many_calls_keeps_its_memory_flat():
    result = subprocess.run(
        [sys.executable, "-c", "from calls.tests.test_media_memory import main; main()"],
        cwd=ROOT,
        env={
            **os.environ,
            "MEDIA_HOST_ADDRESSES": "127.0.0.1",
            "MEDIA_ICE_SERVERS": "",
            "LOG_LEVEL": "WARNING",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    resident = {int(calls): mib for calls, mib in json.loads(result.stdout.splitlines()[-1]).items()}

    assert sorted(resident) == list(range(25, CALLS + 1, 25))
    assert resident[CALLS] - resident[WARM_UP_CALLS] < MOST_GROWTH_MIB, resident
