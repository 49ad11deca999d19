"""The offline assistant's choice for one customer message: pure and fast, nothing to download.

The knowledge base is searched with rapidfuzz; qualification, intent and mood are rules. The reply
quotes prices only from the knowledge base entry it answers with.
"""

import re
from dataclasses import dataclass, field
from enum import StrEnum

from rapidfuzz import fuzz, process, utils

ANSWER_FAQ = "answer_faq"
ASK_QUALIFICATION = "ask_qualification"
OFFER_CALL_BUTTON = "offer_call_button"
HAND_TO_AGENT = "hand_to_agent"
UNKNOWN = "unknown"

FAQ_MATCH_MIN = 70  # rapidfuzz token-set ratio (0 to 100) below which an entry does not answer

ANGRY = re.compile(
    r"\b(angry|furious|ridiculous|unacceptable|terrible|awful|worst|scam|useless|disgusting|"
    r"fed up|sick of|rubbish|complain\w*|refund)\b|!{3,}",
    re.IGNORECASE,
)
WANTS_PERSON = re.compile(
    r"\b(human|real person|a person|someone|somebody|agent|representative|operator|call me|"
    r"phone me|ring me|speak to|talk to|call (?:you|now)|a call)\b",
    re.IGNORECASE,
)
BUYING = re.compile(
    r"\b(buy|purchase|sign up|subscribe|ready to|want to start|order|contract|quote|demo)\b", re.IGNORECASE
)
PLAN = re.compile(r"\b(starter|basic|pro|business|enterprise)\b(?: plan)?", re.IGNORECASE)
TEAM_SIZE = re.compile(
    r"\b(\d{1,5})\s*(?:people|persons|users|seats|agents|employees|staff)\b", re.IGNORECASE
)
TIMELINE = re.compile(
    r"\b(today|tomorrow|asap|right away|immediately|this week|next week|this month|next month|"
    r"this quarter|next quarter|next year|in \d+ (?:days?|weeks?|months?))\b",
    re.IGNORECASE,
)
GREETING = re.compile(r"^\s*(hi|hello|hey|good (?:morning|afternoon|evening))\b", re.IGNORECASE)
QUESTION = re.compile(r"\?|^\s*(how|what|when|where|which|who|why|do|does|is|are|can|could)\b", re.IGNORECASE)
CALL_US = "You can call us now, free, with the button below."
URGENT = re.compile(r"\b(today|tomorrow|asap|right away|immediately|this week)\b", re.IGNORECASE)


class Mood(StrEnum):
    CALM = "calm"
    ANGRY = "angry"


@dataclass(frozen=True)
class Entry:
    question: str
    answer: str
    price: str = ""


@dataclass(frozen=True)
class Question:
    lead_field: str
    question: str


@dataclass(frozen=True)
class Decision:
    action: str
    reply: str = ""
    lead_fields: dict[str, str] = field(default_factory=dict)
    score: int = 0
    reason: str = ""


def lead_fields_of(text: str) -> dict[str, str]:
    """The lead fields a message states, by rule."""
    found = {}
    if plan := PLAN.search(text):
        found["plan"] = plan.group(1).lower()
    if team := TEAM_SIZE.search(text):
        found["team_size"] = team.group(1)
    if when := TIMELINE.search(text):
        found["timeline"] = when.group(1).lower()
    return found


def lead_score(*, fields: dict[str, str], text: str) -> int:
    """0 to 100: how ready the customer is to buy, from what they said."""
    score = 0
    if "plan" in fields:
        score += 20
    if team := fields.get("team_size"):
        score += 25 if int(team) >= 10 else 10
    if when := fields.get("timeline"):
        score += 30 if URGENT.fullmatch(when) else 15
    if BUYING.search(text):
        score += 30
    return min(score, 100)


def faq_match(*, text: str, entries: list[Entry]) -> Entry | None:
    """The knowledge base entry that answers the message, if one does well enough."""
    if not entries:
        return None
    best = process.extractOne(
        text,
        [entry.question for entry in entries],
        scorer=fuzz.token_set_ratio,
        processor=utils.default_process,
        score_cutoff=FAQ_MATCH_MIN,
    )
    return entries[best[2]] if best else None


def decide(
    *,
    text: str,
    entries: list[Entry],
    questions: list[Question],
    known_fields: dict[str, str],
    hot_threshold: int,
    is_first_reply: bool,
    can_be_called: bool = True,
) -> Decision:
    """What the assistant does with a customer's message: hand an angry customer or one who asks for
    a person to an agent, offer a hot lead the call button, answer from the knowledge base, ask the
    next qualification question, or say it does not know (which hands over too). A customer the
    business cannot call (a red-list country) is offered the call button instead of a call back.
    """
    fields = {**known_fields, **lead_fields_of(text)}
    score = lead_score(fields=fields, text=text)
    intro = "Hi, I am the business's automated assistant. " if is_first_reply else ""

    def decision(action: str, reply: str, reason: str) -> Decision:
        return Decision(action=action, reply=intro + reply, lead_fields=fields, score=score, reason=reason)

    if ANGRY.search(text):
        if not can_be_called:
            return decision(OFFER_CALL_BUTTON, "I am sorry. " + CALL_US, "angry, cannot be called")
        return decision(HAND_TO_AGENT, "I am sorry. I am passing you to a colleague now.", "angry")
    if WANTS_PERSON.search(text):
        if not can_be_called:
            return decision(OFFER_CALL_BUTTON, CALL_US, "asked for a person, cannot be called")
        return decision(HAND_TO_AGENT, "I am passing you to a colleague now.", "asked for a person")
    if score > hot_threshold:
        return decision(OFFER_CALL_BUTTON, CALL_US, "hot lead")
    stated = lead_fields_of(text)
    is_answering = bool(stated) and not QUESTION.search(text)  # "the starter plan" is not asking its price
    if not is_answering and (entry := faq_match(text=text, entries=entries)):
        reply = entry.answer + (f" Price: {entry.price}." if entry.price else "")
        return decision(ANSWER_FAQ, reply, "knowledge base")
    unanswered = [question for question in questions if question.lead_field not in fields]
    if unanswered and (stated or BUYING.search(text) or GREETING.search(text)):
        return decision(ASK_QUALIFICATION, unanswered[0].question, "qualifying")
    if not can_be_called:
        return decision(OFFER_CALL_BUTTON, "I do not know that. " + CALL_US, "unknown, cannot be called")
    return decision(UNKNOWN, "I do not know that; a colleague will answer you.", "not in the knowledge base")
