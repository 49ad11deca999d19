"""The offline assistant's choice of action: how often it is right and how long it takes.

Runs the product's own decision, `assistant.decision.decide`, on the labelled customer messages of
`assistant.samples` (FAQ, qualification, hot lead, asks for a person, angry, off-topic: at least 40)
against the sample knowledge base and qualification questions, as a first reply (the introduction
included). Each message is decided 20 times after one untimed pass (imports and rapidfuzz warmed).

- assistant_action_accuracy: the share of messages whose chosen action is the labelled one
  (goal >= 0.9); the misses are listed.
- assistant_decide_p95_ms: the 95th percentile of one decision's wall-clock time. This is the
  decision alone; the reply's time from the webhook's commit to the Graph API send is not measured
  here yet (the assistant is not yet wired into the inbox).

Needs nothing but the virtualenv: no database, no Redis, no model to download.

    .venv/bin/python bench/assistant.py
"""

import time

from benchlib import percentile

from assistant import samples
from assistant.decision import decide

ROUNDS = 20


def decide_sample(text: str):
    return decide(
        text=text,
        entries=samples.ENTRIES,
        questions=samples.QUESTIONS,
        known_fields={},
        hot_threshold=samples.HOT_THRESHOLD,
        is_first_reply=True,
    )


def main() -> None:
    for _, text, _ in samples.LABELLED:
        decide_sample(text)  # warms imports and caches: not timed

    durations_ms = []
    for _ in range(ROUNDS):
        for _, text, _ in samples.LABELLED:
            started = time.perf_counter()
            decide_sample(text)
            durations_ms.append((time.perf_counter() - started) * 1000)

    right = 0
    for category, text, expected in samples.LABELLED:
        chosen = decide_sample(text).action
        right += chosen == expected
        if chosen != expected:
            print(f"miss ({category}): {text!r}: {chosen}, labelled {expected}")
    print(f"{len(samples.LABELLED)} labelled messages, {len(durations_ms)} timed decisions")
    print(f"assistant_decide_p95_ms={percentile(durations_ms, 0.95):.3f}")
    print(f"assistant_action_accuracy={right / len(samples.LABELLED):.3f}")


if __name__ == "__main__":
    main()
