"""A call in one paragraph: the customer's intent, the outcome and how the customer sounded.

Written after the call from its transcript (two channels, so every line's speaker is exact) and
the call's own facts (how it ended, the agent's wrap-up), so a supervisor can scan a hundred calls
in minutes. Two backends behind `summarise`: "local" (offline: a contact-center lexicon, closing
phrases, the facts, and VADER for the customer's sentiment) and "openai" (any OpenAI-compatible
chat endpoint; when it fails, the local summary is used and its `note` says why).
"""

from dataclasses import dataclass

from django.conf import settings

CUSTOMER = "customer"
AGENT = "agent"

INTENTS = (
    "purchase",
    "upgrade",
    "cancellation",
    "refund",
    "complaint",
    "billing",
    "technical_support",
    "order_status",
    "information",
    "wrong_number",
    "other",
)
OUTCOMES = ("sale", "resolved", "follow_up", "escalated", "unresolved", "wrong_number", "no_conversation")
SENTIMENTS = ("positive", "neutral", "negative")
BACKENDS = ("local", "openai")
# How calls end that nobody answered: the customer never spoke with an agent, whatever the recording
# holds (the queue's notice and hold music, the customer's "hello?" to them).
NO_CONVERSATION_REASONS = ("abandoned", "no_agent", "rejected", "unanswered")


@dataclass(frozen=True)
class Line:
    speaker: str  # CUSTOMER or AGENT
    text: str
    start_s: float


@dataclass(frozen=True)
class CallFacts:
    direction: str  # "inbound" (the customer called) or "outbound" (the business called)
    talk_seconds: int | None  # None if never connected to an agent
    # "completed", "abandoned" (the caller left while waiting), "no_agent" (the longest wait passed),
    # "rejected", "unanswered" or "failed"
    end_reason: str
    ended_by: str  # "customer", "agent", "system" or "" (unknown)
    # the agent's wrap-up: "resolved", "follow_up", "escalated", "wrong_number", "other" or ""
    disposition: str
    notes: str  # the agent's wrap-up notes, may be ""
    customer_name: str  # may be ""


def had_conversation(facts: CallFacts) -> bool:
    """Whether the customer spoke with an agent: the call was connected to one. A call that was not
    has no intent and no sentiment, only its facts."""
    return facts.talk_seconds is not None and facts.end_reason not in NO_CONVERSATION_REASONS


@dataclass(frozen=True)
class CallSummary:
    paragraph: str
    intent: str  # one of INTENTS; "" when there was no conversation
    outcome: str  # one of OUTCOMES
    sentiment: str  # one of SENTIMENTS; "" when there was no conversation
    sentiment_score: float | None  # -1.0 .. 1.0, the customer's side; None when there was no conversation
    backend: str  # the backend that wrote it: "local" or "openai"
    note: str = ""  # e.g. why the openai backend fell back to the local one


def summarise(*, lines: list[Line], facts: CallFacts, backend: str | None = None) -> CallSummary:
    """The summary of one call by `backend` (default `settings.SUMMARY_BACKEND`).

    Raises ValueError for an unknown backend. The openai backend never raises for a failing
    endpoint: it returns the local summary with a note saying why.
    """
    from recordings.summaries import local, openai

    chosen = settings.SUMMARY_BACKEND if backend is None else backend
    if chosen == "local":
        return local.summarise(lines=lines, facts=facts)
    if chosen == "openai":
        return openai.summarise(lines=lines, facts=facts)
    raise ValueError(f"unknown summary backend {chosen!r}; expected one of {', '.join(BACKENDS)}")
