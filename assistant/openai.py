"""The assistant's choice made by a language model behind any OpenAI-compatible chat-completions
endpoint, with the offline decision (assistant.decision) as its fallback.

The model only chooses: the action and, to answer, which knowledge base entry. Every word sent to
the customer is built here from the knowledge base and the fixed replies, so no price is ever
invented. The rules the model may not overrule stay with the offline decision: an angry customer or
one asking for a person is handed over, and a customer the business cannot call gets the button.
When the endpoint cannot be reached, times out, answers with an error or with anything else, the
offline decision is returned. The API key is sent only in the Authorization header, never logged.
"""

import json
import logging

import httpx
from django.conf import settings

from assistant import decision as offline
from assistant.decision import (
    ANSWER_FAQ,
    ASK_QUALIFICATION,
    HAND_TO_AGENT,
    OFFER_CALL_BUTTON,
    UNKNOWN,
    Decision,
    Entry,
    Question,
)
from core.chat_completions import EndpointFailure, chat_completion

logger = logging.getLogger(__name__)

ACTIONS = (ANSWER_FAQ, ASK_QUALIFICATION, OFFER_CALL_BUTTON, HAND_TO_AGENT, UNKNOWN)
# Reasons of the offline decision the model may not overrule.
RULED = ("angry", "asked for a person")

SYSTEM_PROMPT = f"""You are a business's WhatsApp assistant choosing what to do with a customer's \
message. You are given the knowledge base as numbered questions, and the message. Reply with one \
JSON object and nothing else: {{"action": one of {", ".join(ACTIONS)}, "entry": the number of the \
knowledge base question that answers the message, or null}}. Choose {ANSWER_FAQ} only when an entry \
answers it; {OFFER_CALL_BUTTON} when the customer is ready to buy; {ASK_QUALIFICATION} when they \
are exploring; {HAND_TO_AGENT} when they want a person or are upset; {UNKNOWN} otherwise."""


def decide(
    *,
    text: str,
    entries: list[Entry],
    questions: list[Question],
    known_fields: dict[str, str],
    hot_threshold: int,
    is_first_reply: bool,
    can_be_called: bool = True,
    client: httpx.Client | None = None,
) -> Decision:
    """The model's choice for one message, or the offline decision when the endpoint fails."""
    fallback = offline.decide(
        text=text,
        entries=entries,
        questions=questions,
        known_fields=known_fields,
        hot_threshold=hot_threshold,
        is_first_reply=is_first_reply,
        can_be_called=can_be_called,
    )
    if fallback.reason.startswith(RULED) or fallback.action == OFFER_CALL_BUTTON:
        return fallback
    try:
        action, entry = _parse(_complete(text, entries, client), entries)
    except EndpointFailure as failure:
        logger.warning("assistant endpoint failed: %s", failure)
        return fallback
    intro = offline.INTRO if is_first_reply else ""
    unanswered = [question for question in questions if question.lead_field not in fallback.lead_fields]
    topic = ""
    if action == ANSWER_FAQ and entry is not None:
        topic = entry.question
        reply = offline.answer_text(entry)
    elif action == ASK_QUALIFICATION and unanswered:
        reply = unanswered[0].question
    elif action in (HAND_TO_AGENT, UNKNOWN) and not can_be_called:
        action, reply = OFFER_CALL_BUTTON, offline.CALL_US
    elif action == HAND_TO_AGENT:
        reply = "I am passing you to a colleague now."
    elif action == OFFER_CALL_BUTTON:
        reply = offline.CALL_US
    else:
        action, reply = UNKNOWN, "I do not know that; a colleague will answer you."
    return Decision(
        action=action,
        reply=intro + reply,
        lead_fields=fallback.lead_fields,
        score=fallback.score,
        reason="model",
        topic=topic,
    )


def _complete(text: str, entries: list[Entry], client: httpx.Client | None) -> str:
    knowledge = "\n".join(f"{number}. {entry.question}" for number, entry in enumerate(entries, start=1))
    return chat_completion(
        url=settings.ASSISTANT_OPENAI_URL,
        key=settings.ASSISTANT_OPENAI_KEY,
        model=settings.ASSISTANT_OPENAI_MODEL,
        messages=[
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Knowledge base:\n{knowledge}\n\nCustomer's message:\n{text}"},
        ],
        timeout_s=settings.ASSISTANT_OPENAI_TIMEOUT_S,
        client=client,
    )


def _parse(content: str, entries: list[Entry]) -> tuple[str, Entry | None]:
    try:
        reply = json.loads(content)
    except ValueError as error:
        raise EndpointFailure("invalid JSON from the endpoint") from error
    if not isinstance(reply, dict) or reply.get("action") not in ACTIONS:
        raise EndpointFailure("no known action from the endpoint")
    number = reply.get("entry")
    if reply["action"] != ANSWER_FAQ:
        return reply["action"], None
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= len(entries):
        raise EndpointFailure("an answer without a knowledge base entry from the endpoint")
    return ANSWER_FAQ, entries[number - 1]
