"""The summary written by a language model behind any OpenAI-compatible chat-completions endpoint
(OpenAI itself, or a self-hosted server speaking the same API).

The reply is untrusted: it must be one JSON object whose fields are all present, of the right types
and within the vocabularies. When the endpoint cannot be reached, times out, answers with an error
or with anything else, the local summary is returned with a note saying why. The API key is sent
only in the Authorization header and never logged. Card numbers, national ids, emails and phone
numbers are masked (recordings.redaction) in what is sent: the endpoint may be a third party's.
"""

import json
import logging

from django.conf import settings

from core.chat_completions import EndpointFailure, chat_completion
from recordings.redaction import redact
from recordings.summaries import (
    AGENT,
    CUSTOMER,
    INTENTS,
    OUTCOMES,
    SENTIMENTS,
    CallFacts,
    CallSummary,
    Line,
    had_conversation,
    local,
)

logger = logging.getLogger(__name__)

MAX_PARAGRAPH_LENGTH = 1200
# A very long call is sent as its beginning (the intent) and its end (the outcome).
MAX_TRANSCRIPT_CHARS = 40_000

SYSTEM_PROMPT = f"""You summarise phone calls between a business's contact-center agent and a customer, \
for a supervisor who reads a hundred summaries in a few minutes.

You are given the call's facts and its transcript; every transcript line is labelled with its exact \
speaker, "Customer" or "Agent". Use only what the facts and the transcript say: never invent names, \
products, prices, dates or promises.

Reply with one JSON object and nothing else, with exactly these fields:
- "paragraph": one readable paragraph (at most 5 sentences, under {MAX_PARAGRAPH_LENGTH} characters) \
naming what the customer wanted, what the agent did and how it ended, and how the customer sounded.
- "intent": what the customer wanted, one of: {", ".join(INTENTS)}.
- "outcome": how the call ended, one of: {", ".join(OUTCOMES)}. "sale" is a purchase or upgrade \
completed on the call; "no_conversation" means the customer never spoke with an agent; the agent's \
wrap-up disposition, when given, is authoritative.
- "sentiment": how the customer sounded, mostly towards the end of the call, one of: \
{", ".join(SENTIMENTS)}.
- "sentiment_score": a number from -1.0 (very negative) to 1.0 (very positive) for the customer's side."""

SPEAKER_LABELS = {CUSTOMER: "Customer", AGENT: "Agent"}


def summarise(*, lines: list[Line], facts: CallFacts) -> CallSummary:
    """The model's summary of one call, or the local one with a note when the endpoint fails."""
    if not any(line.text.strip() for line in lines):
        # Nothing was said: the facts alone tell the story, and a model could only invent more.
        return _local(lines, facts, "empty transcript; local summary")
    if not had_conversation(facts):
        # Nobody answered: the transcript is the queue's notice and hold audio, and the customer
        # alone; a model would find an intent and a mood in it.
        return _local(lines, facts, "no conversation with an agent; local summary")
    try:
        content = _complete(_messages(lines, facts))
        return _parse(content)
    except EndpointFailure as failure:
        logger.warning("summary endpoint failed: %s", failure)
        return _local(lines, facts, f"openai backend failed ({failure}); local summary")


def _local(lines: list[Line], facts: CallFacts, note: str) -> CallSummary:
    summary = local.summarise(lines=lines, facts=facts)
    return CallSummary(**{**summary.__dict__, "note": note})


def _messages(lines: list[Line], facts: CallFacts) -> list[dict[str, str]]:
    # Card numbers, national ids, emails and phone numbers never leave for the endpoint.
    transcript = "\n".join(
        f"{SPEAKER_LABELS.get(line.speaker, line.speaker.title())}: {redact(' '.join(line.text.split()))}"
        for line in lines
        if line.text.strip()
    )
    if len(transcript) > MAX_TRANSCRIPT_CHARS:
        half = MAX_TRANSCRIPT_CHARS // 2
        transcript = f"{transcript[:half]}\n[\u2026]\n{transcript[-half:]}"
    outbound = facts.direction == "outbound"
    talk = "never connected to an agent" if facts.talk_seconds is None else f"{facts.talk_seconds} s"
    call_facts = "\n".join(
        [
            f"Direction: {facts.direction} ({'the business' if outbound else 'the customer'} called)",
            f"Talk time: {talk}",
            f"End reason: {facts.end_reason or 'unknown'}",
            f"Ended by: {facts.ended_by or 'unknown'}",
            f"Agent's disposition: {facts.disposition or 'not given'}",
            f"Agent's notes: {redact(facts.notes.strip()) or 'none'}",
            f"Customer's name: {facts.customer_name.strip() or 'unknown'}",
        ]
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Call facts:\n{call_facts}\n\nTranscript:\n{transcript}"},
    ]


def _complete(messages: list[dict[str, str]]) -> str:
    """The content of the model's reply."""
    return chat_completion(
        url=settings.SUMMARY_OPENAI_URL,
        key=settings.SUMMARY_OPENAI_KEY,
        model=settings.SUMMARY_OPENAI_MODEL,
        messages=messages,
        timeout_s=settings.SUMMARY_OPENAI_TIMEOUT_S,
    )


def _parse(content: str) -> CallSummary:
    """The model's JSON reply as a summary, checked field by field."""
    try:
        reply = json.loads(content)
    except ValueError as error:
        raise EndpointFailure("invalid JSON from the endpoint") from error
    if not isinstance(reply, dict):
        raise EndpointFailure("invalid JSON from the endpoint: not an object")
    paragraph = reply.get("paragraph")
    if not isinstance(paragraph, str) or not paragraph.strip():
        raise EndpointFailure("invalid paragraph from the endpoint")
    if len(paragraph) > MAX_PARAGRAPH_LENGTH:
        raise EndpointFailure("paragraph too long from the endpoint")
    for field, vocabulary in (("intent", INTENTS), ("outcome", OUTCOMES), ("sentiment", SENTIMENTS)):
        if reply.get(field) not in vocabulary:
            raise EndpointFailure(f"invalid {field} from the endpoint")
    score = reply.get("sentiment_score")
    # bool is an int in Python, and never a score
    if isinstance(score, bool) or not isinstance(score, int | float) or not -1.0 <= score <= 1.0:
        raise EndpointFailure("invalid sentiment_score from the endpoint")
    if reply["outcome"] == "no_conversation":  # as the local summary: no intent, no sentiment
        return CallSummary(
            paragraph=" ".join(paragraph.split()),
            intent="",
            outcome="no_conversation",
            sentiment="",
            sentiment_score=None,
            backend="openai",
        )
    return CallSummary(
        paragraph=" ".join(paragraph.split()),
        intent=reply["intent"],
        outcome=reply["outcome"],
        sentiment=reply["sentiment"],
        sentiment_score=round(float(score), 3),
        backend="openai",
    )
