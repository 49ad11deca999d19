"""The offline assistant: how often it chooses the right action, how long it takes to decide, and
how soon its answer reaches Meta once a customer writes.

Accuracy: the product's own decision, `assistant.decision.decide`, on labelled customer messages
(FAQ, qualification, hot lead, asks for a person, angry, off-topic) against the sample knowledge
base, as a first reply.
- assistant_action_accuracy: on `assistant.samples_heldout`, a set written apart from the rules
  and never tuned against (goal >= 0.9); the misses are listed.
- assistant_action_accuracy_tuning: on `assistant.samples`, the set the rules were written with.
- assistant_decide_p95_ms: one decision's wall-clock time (each message 20 times, after one
  untimed pass).

Reply time, through the product as it runs: the web server (uvicorn, as the Procfile runs it), a
Celery worker, Redis and the database as configured (the bundled Redis and SQLite by default), and
the sandbox playing Meta: its simulated customers write to the sample number, whose assistant is on
with the sample knowledge base; the sandbox delivers each message as a signed webhook and records
when the business's answer reaches its Graph API.
- assistant_reply_p95_ms (goal < 300), assistant_reply_p50_ms: from the moment the customer's
  message is handed to the sandbox's webhook sender (before the webhook is even posted, so the
  webhook's handling and commit are inside the figure) to the answer's arrival at the Graph API.
  Each customer writes twice: a first message (a new conversation) and a follow-up, one at a time.

    .venv/bin/python bench/assistant.py
"""

import os
import subprocess
import sys
import time

import benchlib
from benchlib import APP_SECRET, NUMBER_ID, ROOT, WABA_ID, percentile, print_figures

from assistant import samples, samples_heldout
from assistant.decision import decide

ROUNDS = 20
CUSTOMERS = 40
ANSWER_TIMEOUT_S = 10.0
WORKER_QUEUE = "bench-assistant"
CONVERSATION = ("How much does the Pro plan cost?", "We are 12 people and want to start next month")


def decide_sample(text: str):
    return decide(
        text=text,
        entries=samples.ENTRIES,
        questions=samples.QUESTIONS,
        known_fields={},
        hot_threshold=samples.HOT_THRESHOLD,
        is_first_reply=True,
    )


def accuracy(labelled: list[tuple[str, str, str]], name: str) -> float:
    right = 0
    for category, text, expected in labelled:
        chosen = decide_sample(text).action
        right += chosen == expected
        if chosen != expected:
            print(f"{name} miss ({category}): {text!r}: {chosen}, labelled {expected}")
    return right / len(labelled)


def decide_p95_ms() -> float:
    for _, text, _ in samples.LABELLED:
        decide_sample(text)  # warms imports and caches: not timed
    durations_ms = []
    for _ in range(ROUNDS):
        for _, text, _ in samples.LABELLED:
            started = time.perf_counter()
            decide_sample(text)
            durations_ms.append((time.perf_counter() - started) * 1000)
    return percentile(durations_ms, 0.95)


def start_worker() -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "--app", "config", "worker", "--pool", "solo"]
    command += ["--loglevel", "WARNING", "--queues", WORKER_QUEUE, "--without-heartbeat", "--without-gossip"]
    return subprocess.Popen(command, cwd=ROOT, env=benchlib.server_environment(), stdout=subprocess.DEVNULL)


def reply_times_ms() -> list[float]:
    """Customers write through the sandbox to the running product; how long each answer took."""
    from whatsapp.sandbox.server import SandboxThread

    thread = SandboxThread(token="bench-token", webhook_url=None, app_secret=APP_SECRET)
    with thread as sandbox:
        os.environ["WHATSAPP_GRAPH_URL"] = sandbox.graph_url
        benchlib.CELERY_QUEUE = WORKER_QUEUE  # the web process queues the answers for the worker
        with benchlib.web_server() as base_url:
            sandbox.sender.url = f"{base_url}/webhooks/whatsapp/"
            thread.call(
                sandbox.add_number,
                phone_number_id=NUMBER_ID,
                waba_id=WABA_ID,
                display_phone_number="+44 20 7946 0000",
            )
            from assistant.demo import demo_assistant_create
            from messaging.models import Conversation

            benchlib.prepare_number()
            demo_assistant_create(phone_number_id=NUMBER_ID)
            # An earlier run's conversations are over: each customer's first message opens a new one.
            Conversation.objects.filter(
                business_number__phone_number_id=NUMBER_ID, state__in=Conversation.OPEN_STATES
            ).update(state=Conversation.State.CLOSED, agent=None)
            worker = start_worker()
            try:
                return converse(thread, sandbox)
            finally:
                worker.terminate()
                worker.wait(timeout=20)


def converse(thread, sandbox) -> list[float]:
    customers = [
        thread.call(sandbox.add_customer, wa_id=f"4477009{index:05d}", name=f"Bench {index}")
        for index in range(CUSTOMERS)
    ]
    times_ms: list[float] = []
    # The first answers wait for the worker to start: one warm-up customer, not counted.
    warm_up = thread.call(sandbox.add_customer, wa_id="447700899999", name="Warm-up")
    answered_in(thread, warm_up, "hello", timeout_s=60)
    for text in CONVERSATION:
        for customer in customers:
            took = answered_in(thread, customer, text, timeout_s=ANSWER_TIMEOUT_S)
            if took is None:
                print(f"no answer within {ANSWER_TIMEOUT_S:.0f} s to {customer.wa_id}: {text!r}")
            else:
                times_ms.append(took)
    return times_ms


def answered_in(thread, customer, text: str, *, timeout_s: float) -> float | None:
    """Milliseconds from the customer's message to the business's answer at the Graph API."""
    before = thread.call(lambda: len(customer.inbox))
    started = thread.call(lambda: customer.meta.now())
    thread.call(customer.send_text, NUMBER_ID, text)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        arrived = thread.call(lambda: customer.inbox[before:])
        if arrived:
            return (arrived[0].sent_at - started).total_seconds() * 1000
        time.sleep(0.002)
    return None


def main() -> None:
    held_out = accuracy(samples_heldout.LABELLED, "held-out")
    tuning = accuracy(samples.LABELLED, "tuning")
    decide_ms = decide_p95_ms()
    print(f"{len(samples_heldout.LABELLED)} held-out and {len(samples.LABELLED)} tuning messages")
    replies = reply_times_ms()
    print(f"{len(replies)} answers timed of {CUSTOMERS * len(CONVERSATION)} customer messages")
    print(f"assistant_decide_p95_ms={decide_ms:.3f}")
    print_figures(
        {
            "assistant_reply_p50_ms": percentile(replies, 0.5),
            "assistant_reply_p95_ms": percentile(replies, 0.95),
        }
    )
    print(f"assistant_action_accuracy_tuning={tuning:.3f}")
    print(f"assistant_action_accuracy={held_out:.3f}")


if __name__ == "__main__":
    main()
