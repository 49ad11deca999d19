"""The offline summary: a contact-center lexicon, the agent's closing phrases, the call's facts,
and VADER for how the customer sounded.

Everything in the paragraph comes from the facts or is quoted from the transcript: the template
sentences state only what the call's facts or the matched phrases show.
"""

import functools
import re
from collections.abc import Iterable

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from recordings.summaries import AGENT, CUSTOMER, CallFacts, CallSummary, Line, had_conversation
from recordings.summaries.lexicon import (
    CLOSING_PHRASES,
    CUSTOMER_CONFIRMATIONS,
    INTENT_PHRASES,
    SENTIMENT_NEUTRAL_PHRASES,
    SENTIMENT_NEUTRAL_WORDS,
)

CUSTOMER_WEIGHT = 2  # what the customer says names the intent better than the agent's words
MINIMUM_INTENT_SCORE = 2  # below this (one hint from the agent, say) the intent is "other"
SENTIMENT_THRESHOLD = 0.05  # VADER's recommended bounds for neutral
QUOTE_LENGTH = 160
NOTES_LENGTH = 240
SALE_INTENTS = ("purchase", "upgrade")
DISPOSITION_OUTCOMES = {"wrong_number": "wrong_number", "escalated": "escalated", "follow_up": "follow_up"}
# Which closing wins when the agent said several: a sale, then a hand-over, then a promise to
# come back, then a plain resolution.
CLOSING_ORDER = ("sale", "escalated", "follow_up", "resolved")

INBOUND_INTENT = {
    "purchase": "to make a purchase",
    "upgrade": "about an upgrade",
    "cancellation": "to cancel",
    "refund": "to ask for a refund",
    "complaint": "to complain",
    "billing": "with a billing question",
    "technical_support": "for technical support",
    "order_status": "about the status of an order",
    "information": "for information",
}
OUTBOUND_INTENT = {
    "purchase": "a purchase",
    "upgrade": "an upgrade",
    "cancellation": "a cancellation",
    "refund": "a refund",
    "complaint": "a complaint",
    "billing": "a billing question",
    "technical_support": "a technical problem",
    "order_status": "the status of an order",
    "information": "a request for information",
}
OUTCOME_SENTENCES = {
    "sale": "The agent closed the sale",
    "resolved": "The agent resolved the request",
    "follow_up": "The request needs a follow-up",
    "escalated": "The agent escalated the call",
    "unresolved": "The call ended without a recorded resolution",
    "wrong_number": "It was a wrong number",
}


def summarise(*, lines: list[Line], facts: CallFacts) -> CallSummary:
    """The local summary of one call. Deterministic, offline, and quick (no model to load)."""
    spoken = [line for line in lines if line.text.strip()]
    if not had_conversation(facts) or not spoken:
        # Nobody spoke with an agent, or nothing said could be transcribed: a recording of a call
        # nobody answered holds the queue's notice and hold audio, and the customer alone. No
        # intent and no sentiment come from that; the facts tell the story.
        return CallSummary(
            paragraph=_no_conversation_paragraph(facts, has_talk=bool(spoken)),
            intent="",
            outcome="no_conversation",
            sentiment="",
            sentiment_score=None,
            backend="local",
        )
    customer_lines = [line.text for line in spoken if line.speaker == CUSTOMER]
    agent_lines = [line.text for line in spoken if line.speaker == AGENT]

    intent = _intent(customer_lines, agent_lines, facts)
    closing, closing_sentence = _closing(agent_lines, customer_lines, intent)
    outcome = _outcome(facts, intent, closing)
    score = customer_sentiment(customer_lines)
    sentiment = sentiment_label(score)
    paragraph = _paragraph(
        facts=facts,
        intent=intent,
        outcome=outcome,
        sentiment=sentiment,
        customer_quote=_customer_quote(customer_lines, intent),
        agent_quote=closing_sentence if closing == outcome else "",
        has_customer_lines=bool(customer_lines),
    )
    return CallSummary(
        paragraph=paragraph,
        intent=intent,
        outcome=outcome,
        sentiment=sentiment,
        sentiment_score=round(score, 3),
        backend="local",
    )


# --- Matching -------------------------------------------------------------------------------


def _normalise(text: str) -> str:
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("-", " ")
    return re.sub(r"\s+", " ", text).strip()


@functools.cache
def _pattern(phrase: str) -> re.Pattern:
    words = [re.escape(word.rstrip("*")) + (r"\w*" if word.endswith("*") else "") for word in phrase.split()]
    return re.compile(r"(?<![\w'])" + r"\s+".join(words) + r"(?![\w'])")


def _matches(phrase: str, text: str) -> bool:
    return _pattern(phrase).search(_normalise(text)) is not None


# A purpose denied before a phrase in its clause: "I don't want to cancel", "I'm not calling to
# complain", "no need to upgrade", "it's not a complaint". A fact stated in the negative still names
# the subject ("my parcel was not delivered", "I didn't get my refund"): no purpose word, no denial.
_PURPOSES = (
    "want", "wanna", "need", "mean", "meant", "plan", "planning", "intend", "wish", "trying", "try",
    "looking", "going", "calling", "ringing", "asking", "here",
)  # fmt: skip
_FILLERS = ("to", "for", "about", "a", "an", "any", "my", "the", "this", "that", "it", "be")
_DENIED_PURPOSE = re.compile(
    r"\b(?:not|never|no|don't|dont|didn't|won't|wouldn't)\s+"
    rf"(?:(?:{'|'.join(_PURPOSES)})\s+(?:(?:{'|'.join(_FILLERS)})\s+){{0,2}}|(?:a|an|about|any)\s+)$"
)
# The purpose words a phrase opens with ("want to" of "want to cancel") are read with what precedes it.
_PURPOSE_HEAD = re.compile(rf"(?:(?:{'|'.join(_PURPOSES + _FILLERS)})\s+)*")
_CLAUSE = re.compile(r".*(?:[,.;:!?\u2026]|\bbut\b)(.*)", re.DOTALL)  # greedy: the last clause


def _is_denied(before: str, matched: str) -> bool:
    """Whether the line, up to a phrase and within its clause, denies the purpose the phrase names."""
    text = before + _PURPOSE_HEAD.match(matched).group()
    clause = _CLAUSE.match(text)
    return _DENIED_PURPOSE.search((clause.group(1) if clause else text).strip() + " ") is not None


def intent_scores(text: str) -> dict[str, int]:
    """How much one line says of each intent: the weights of the lexicon's phrases found in it.

    Where phrases overlap, the longest is read and the ones inside it are not ("where is my order",
    not "my order" as well), whichever intent they name; a phrase whose purpose the line denies
    ("I don't want to cancel") counts for nothing, though it still hides the phrases inside it.
    A phrase counts once per line."""
    normalised = _normalise(text)
    found = [
        (match.end() - match.start(), weight, match.start(), match.end(), intent, phrase)
        for intent, phrases in INTENT_PHRASES.items()
        for phrase, weight in phrases.items()
        for match in _pattern(phrase).finditer(normalised)
    ]
    taken: list[tuple[int, int]] = []
    counted: dict[tuple[str, str], int] = {}
    for _, weight, start, end, intent, phrase in sorted(
        found, key=lambda match: (-match[0], -match[1], match[2])
    ):
        if any(start < other_end and other_start < end for other_start, other_end in taken):
            continue
        taken.append((start, end))
        if not _is_denied(normalised[:start], normalised[start:end] + " "):
            counted[(intent, phrase)] = weight
    scores = dict.fromkeys(INTENT_PHRASES, 0)
    for (intent, _), weight in counted.items():
        scores[intent] += weight
    return scores


def _sentences(texts: Iterable[str]) -> list[str]:
    return [sentence for text in texts for sentence in re.split(r"(?<=[.!?])\s+", text.strip()) if sentence]


# --- Intent, outcome, sentiment -------------------------------------------------------------


def _intent(customer_lines: list[str], agent_lines: list[str], facts: CallFacts) -> str:
    if facts.disposition == "wrong_number":
        return "wrong_number"
    customer_scores = [intent_scores(text) for text in customer_lines]
    agent_scores = [intent_scores(text) for text in agent_lines]
    scores = {
        intent: CUSTOMER_WEIGHT * sum(line[intent] for line in customer_scores)
        + sum(line[intent] for line in agent_scores)
        for intent in INTENT_PHRASES
    }
    # Ties go to the intent listed first in the lexicon, the more specific one.
    best = max(scores, key=lambda intent: scores[intent])
    return best if scores[best] >= MINIMUM_INTENT_SCORE else "other"


def _closing(agent_lines: list[str], customer_lines: list[str], intent: str) -> tuple[str, str]:
    """How the call closed according to the words said ("" if nothing said so), with the agent's
    sentence that said it: the one with the most closing phrases, then the longest."""
    found: dict[str, tuple[int, int, str]] = {}
    for sentence in _sentences(agent_lines):
        for closing, phrases in CLOSING_PHRASES.items():
            matched = sum(_matches(phrase, sentence) for phrase in phrases)
            # "Order placed" on a call about something else closes it, but sells nothing.
            kind = "resolved" if closing == "sale" and intent not in SALE_INTENTS else closing
            if matched:
                found[kind] = max(found.get(kind, (0, 0, "")), (matched, len(sentence), sentence))
    if "resolved" not in found and any(
        _matches(phrase, text) for text in customer_lines for phrase in CUSTOMER_CONFIRMATIONS
    ):
        found["resolved"] = (0, 0, "")
    for closing in CLOSING_ORDER:
        if closing in found:
            return closing, found[closing][2]
    return "", ""


def _outcome(facts: CallFacts, intent: str, closing: str) -> str:
    """How a call with a conversation ended."""
    if intent == "wrong_number":
        return "wrong_number"
    if closing == "sale" and facts.disposition in ("", "resolved", "other"):
        return "sale"
    if facts.disposition in DISPOSITION_OUTCOMES:
        return DISPOSITION_OUTCOMES[facts.disposition]
    if facts.disposition == "resolved":
        return "resolved"
    if closing:
        return closing
    return "unresolved"


@functools.cache
def _analyzer() -> SentimentIntensityAnalyzer:
    analyzer = SentimentIntensityAnalyzer()
    for word in SENTIMENT_NEUTRAL_WORDS:
        analyzer.lexicon.pop(word, None)
    return analyzer


def customer_sentiment(customer_lines: list[str]) -> float:
    """VADER's compound score over the customer's lines, later lines weighing more (the way the
    call ended matters most): line n of N weighs n. 0.0 when the customer said nothing."""
    if not customer_lines:
        return 0.0
    analyzer = _analyzer()
    total = weights = 0.0
    for position, text in enumerate(customer_lines, start=1):
        cleaned = _normalise(text)
        for phrase in SENTIMENT_NEUTRAL_PHRASES:
            cleaned = _pattern(phrase).sub(" ", cleaned)
        total += position * analyzer.polarity_scores(cleaned)["compound"]
        weights += position
    return max(-1.0, min(1.0, total / weights))


def sentiment_label(score: float) -> str:
    if score >= SENTIMENT_THRESHOLD:
        return "positive"
    if score <= -SENTIMENT_THRESHOLD:
        return "negative"
    return "neutral"


# --- The paragraph --------------------------------------------------------------------------


def _customer_quote(customer_lines: list[str], intent: str) -> str:
    """The customer's sentence that says most about the intent; failing that, the longest one
    of five words or more."""
    weighed = [(intent_scores(sentence).get(intent, 0), sentence) for sentence in _sentences(customer_lines)]
    candidates = [
        (weight, min(len(sentence.split()), 25), -position, sentence)
        for position, (weight, sentence) in enumerate(weighed)
        if len(sentence.split()) >= 5 or weight
    ]
    return _shortened(max(candidates)[3], QUOTE_LENGTH) if candidates else ""


def _shortened(text: str, length: int) -> str:
    text = " ".join(text.split())
    if len(text) <= length:
        return text
    return text[:length].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"


def _quoted(text: str) -> str:
    """A quotation that closes its sentence."""
    return f"\u201c{text}\u201d" + ("" if text[-1] in ".!?\u2026" else ".")


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    if minutes:
        parts.append(f"{minutes} min")
    if seconds or not parts:
        parts.append(f"{seconds} s")
    return " ".join(parts)


def _ending(facts: CallFacts) -> str:
    parts = [] if facts.talk_seconds is None else [_duration(facts.talk_seconds)]
    if facts.ended_by:
        parts.append(f"ended by the {facts.ended_by}")
    return f"({', '.join(parts)}.)" if parts else ""


def _notes(facts: CallFacts) -> str:
    notes = " ".join(facts.notes.split())
    return f"Agent\u2019s notes: {_quoted(_shortened(notes, NOTES_LENGTH))}" if notes else ""


def _paragraph(
    *,
    facts: CallFacts,
    intent: str,
    outcome: str,
    sentiment: str,
    customer_quote: str,
    agent_quote: str,
    has_customer_lines: bool,
) -> str:
    customer = facts.customer_name.strip() or "The customer"
    sentences = [_opening(facts, intent)]
    if customer_quote:
        sentences.append(f"{customer} said: {_quoted(customer_quote)}")
    if outcome != "wrong_number":  # the opening said so already
        closing = OUTCOME_SENTENCES[outcome]
        sentences.append(f"{closing}: {_quoted(agent_quote)}" if agent_quote else f"{closing}.")
    sentences.append(_notes(facts))
    if has_customer_lines:
        sentences.append(f"{customer} sounded {sentiment}.")
    else:
        sentences.append("The customer\u2019s side was not transcribed.")
    sentences.append(_ending(facts))
    return " ".join(sentence for sentence in sentences if sentence)


def _opening(facts: CallFacts, intent: str) -> str:
    """Who called whom, and why."""
    name = facts.customer_name.strip()
    if facts.direction == "outbound":
        called = f"The agent called {name or 'the customer'}"
        if intent == "wrong_number":
            return f"{called}, but it was the wrong number."
        if intent in OUTBOUND_INTENT:
            return f"{called}; the conversation was about {OUTBOUND_INTENT[intent]}."
        return f"{called}; the subject is not clear from the transcript."
    if intent == "wrong_number":
        return f"{name or 'The caller'} had dialled the wrong number."
    if intent in INBOUND_INTENT:
        return f"{name or 'The customer'} called {INBOUND_INTENT[intent]}."
    return f"{name or 'The customer'} called; the reason is not clear from the transcript."


def _no_conversation_paragraph(facts: CallFacts, *, has_talk: bool) -> str:
    """A call where nobody spoke with an agent, told from its facts alone."""
    name = facts.customer_name.strip()
    inbound = facts.direction != "outbound"
    caller = name or ("The caller" if inbound else "The customer")
    by = f" by the {facts.ended_by}" if facts.ended_by else ""
    if facts.end_reason == "abandoned":
        opening = f"{caller} hung up while waiting in the queue."
    elif facts.end_reason == "no_agent":
        opening = f"{caller} waited in the queue, but no agent answered before the longest allowed wait."
    elif facts.end_reason == "rejected":
        opening = f"The call was rejected{by}."
    elif facts.end_reason == "unanswered":
        opening = f"{caller} did not answer." if not inbound else "Nobody answered the call."
    elif facts.end_reason == "failed" and facts.talk_seconds is None:
        opening = "The call failed before it reached an agent."
    elif facts.talk_seconds is None:
        opening = "The call ended before it was connected to an agent."
    else:
        opening = "The call was connected, but nothing was said that could be transcribed."
    sentences = [opening, _notes(facts)]
    if facts.talk_seconds is not None or has_talk:
        sentences.append(_ending(facts))
    return " ".join(sentence for sentence in sentences if sentence)
