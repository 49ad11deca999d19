"""The assistant at work in the shared inbox: it takes a number's new conversations when it is on
(always, or within the number's queue's opening hours), answers each customer message by text after
the webhook commits, keeps the conversation's lead (fields, score, sentiment, one-paragraph summary)
and hands the conversation to the agents when it should.

A hot lead gets the call button ("Call us", Meta's `voice_call` message) so the customer calls in,
free; a customer who asks for a person, is angry, or asks what the knowledge base cannot answer is
handed to the agents (waiting in the number's queue). A customer the business can never call (a
red-list country, WHATSAPP_API.md §3.7) is offered the button instead of a call back. Messages the
assistant cannot read (a voice note, a photo, a file) go to a person.

The assistant's answer is one task per customer message; a burst of messages gets one reply, to
them all, from the last one's task. An answer that never came (a task lost with the broker) is
handed over by the sweep, so no customer waits on the assistant for nothing.
"""

import datetime
import logging
from dataclasses import replace

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from agents.models import Queue
from assistant import decision as offline
from assistant import openai
from assistant.decision import (
    ANSWER_FAQ,
    HAND_TO_AGENT,
    OFFER_CALL_BUTTON,
    UNKNOWN,
    Decision,
    Entry,
    Question,
)
from assistant.models import AssistantSettings, Lead, LeadField
from calls.selectors import queue_is_open
from compliance.decisions import country_refusals
from core.jobs import enqueue_on_commit
from messaging.conversations import conversation_hand_over
from messaging.models import Conversation, Message
from messaging.services import message_record_from_assistant
from whatsapp.client import call_button_message_request, text_message_request

logger = logging.getLogger(__name__)

# What the assistant reads; anything else a customer sends (a photo, a voice note) goes to a person.
READ_TYPES = frozenset({"text", "button", "interactive"})
CALL_BUTTON_TEXT = "Call us"
ANSWER_OVERDUE = datetime.timedelta(minutes=1)  # no answer after this long: the agents take over

INTENTS = {
    "angry": "is upset and wants it put right",
    "asked for a person": "asked to talk to a person",
    "hot lead": "is ready to buy",
    "knowledge base": "asked about the product",
    "qualifying": "is exploring the plans",
    "qualified": "answered every qualification question",
    "not in the knowledge base": "asked something the assistant could not answer",
    "wrote after the call button": "was offered the call button and wrote again",
    "sent what the assistant cannot read": "sent something only a person can look at",
    "assistant turned off": "wrote after the assistant was turned off",
}


# --- Which conversations the assistant takes ----------------------------------------------------


def assistant_answers(message: Message, queue: Queue | None) -> bool:
    """Whether the number's assistant takes the conversation this customer message opens: it is on,
    and answers always or the number's queue (`queue`, the conversation's) is open now."""
    assistant = AssistantSettings.objects.filter(
        business_number_id=message.business_number_id, is_enabled=True
    ).first()
    if assistant is None:
        return False
    if assistant.hours == AssistantSettings.Hours.ALWAYS:
        return True
    return queue is None or queue_is_open(queue=queue, at=timezone.now())


def assistant_message_joined(conversation: Conversation, message: Message) -> None:
    """A customer's message joined a conversation the assistant has: it answers after commit."""
    from assistant.tasks import answer

    enqueue_on_commit(answer, conversation_id=conversation.pk, message_id=message.pk)


# --- Answering ----------------------------------------------------------------------------------


@transaction.atomic
def assistant_reply(*, conversation_id: int, message_id: int) -> Message | None:
    """The assistant's answer to the customer's messages up to `message_id`: decided, recorded (to
    send once this commits, `messaging.services.message_send_recorded`) and the lead updated; the
    conversation handed to the agents when it should be. None, changing nothing, when the assistant
    no longer has the conversation, a newer message of the customer's will be answered instead, or
    there is nothing to answer (a reaction)."""
    now = timezone.now()
    # The conditional UPDATE locks the conversation: two answers of one conversation take turns.
    if not Conversation.objects.filter(pk=conversation_id, state=Conversation.State.ASSISTANT).update(
        updated_at=now
    ):
        return None
    conversation = Conversation.objects.select_related("business_number", "contact").get(pk=conversation_id)
    unanswered = list(_unanswered(conversation))
    if not unanswered or unanswered[-1].pk != message_id:
        return None  # answered already, or a newer message's answer answers this one too
    unanswered = [message for message in unanswered if not _needs_no_answer(message)]
    if not unanswered:
        return None
    read = [message for message in unanswered if message.message_type in READ_TYPES and message.text.strip()]
    lead, _ = Lead.objects.get_or_create(conversation=conversation)
    decision = _decide(conversation, lead, text="\n".join(message.text for message in read), now=now)
    if len(read) < len(unanswered) and decision.action != OFFER_CALL_BUTTON:
        decision = replace(
            decision,
            action=HAND_TO_AGENT,
            reply=_intro(lead) + "I can only read text; a colleague will look at what you sent.",
            reason="sent what the assistant cannot read",
        )
    return _answer(conversation, lead, decision, now=now)


def _needs_no_answer(message: Message) -> bool:
    """A reaction, or the customer's answer to a call permission request (compliance records it)."""
    if message.message_type == "reaction":
        return True
    item = (message.raw or {}).get("item")  # the message as Meta sent it (whatsapp.events)
    content = item.get("interactive") if isinstance(item, dict) else None
    is_interactive = message.message_type == "interactive" and isinstance(content, dict)
    return is_interactive and content.get("type") == "call_permission_reply"


def _unanswered(conversation: Conversation):
    """The customer's messages in the conversation since the assistant (or anyone) last wrote."""
    thread = Message.objects.filter(
        business_number_id=conversation.business_number_id,
        contact_id=conversation.contact_id,
        created_at__gte=conversation.opened_at,
    )
    last_reply = thread.filter(direction=Message.Direction.OUTBOUND).aggregate(last=Max("pk"))["last"]
    return thread.filter(direction=Message.Direction.INBOUND, pk__gt=last_reply or 0).order_by("pk")


def _decide(conversation: Conversation, lead: Lead, *, text: str, now: datetime.datetime) -> Decision:
    number = conversation.business_number
    assistant = AssistantSettings.objects.filter(business_number=number, is_enabled=True).first()
    if assistant is None:  # turned off since the conversation opened: a person answers
        return Decision(
            action=HAND_TO_AGENT,
            reply="A colleague will answer you shortly.",
            lead_fields=lead.fields,
            score=lead.score,
            reason="assistant turned off",
        )
    decide = openai.decide if settings.ASSISTANT_BACKEND == "openai" else offline.decide
    can_be_called = not country_refusals(business_number=number, wa_id=conversation.contact.wa_id)
    decision = decide(
        text=text,
        entries=[
            Entry(entry.question, entry.answer, entry.price) for entry in number.knowledge_entries.all()
        ],
        questions=[Question(q.lead_field, q.question) for q in number.qualification_questions.all()],
        known_fields=lead.fields,
        hot_threshold=assistant.hot_threshold,
        is_first_reply=lead.replies == 0,
        can_be_called=can_be_called,
    )
    if decision.action == OFFER_CALL_BUTTON and lead.call_button_sent_at is not None:
        # Offered the button already and writing again: a person takes it from here, by text.
        decision = replace(
            decision,
            action=HAND_TO_AGENT,
            reply=f'A colleague will answer you here, or tap "{CALL_BUTTON_TEXT}" above to call us now.',
            reason="wrote after the call button",
        )
    return decision


def _intro(lead: Lead) -> str:
    return offline.INTRO if lead.replies == 0 else ""


def _answer(conversation: Conversation, lead: Lead, decision: Decision, *, now: datetime.datetime) -> Message:
    number, contact = conversation.business_number, conversation.contact
    if decision.action == OFFER_CALL_BUTTON:
        request = call_button_message_request(
            phone_number_id=number.phone_number_id,
            to=contact.wa_id,
            body_text=decision.reply,
            display_text=CALL_BUTTON_TEXT,
            payload=f"conversation:{conversation.pk}",
        )
        lead.call_button_sent_at = now
    else:
        request = text_message_request(
            phone_number_id=number.phone_number_id, to=contact.wa_id, body=decision.reply
        )
    hands_over = decision.action in (HAND_TO_AGENT, UNKNOWN)
    lead.fields = decision.lead_fields
    lead.score = decision.score
    lead.intent = INTENTS.get(decision.reason, decision.reason)[:200]
    if decision.reason.startswith("angry"):
        lead.sentiment = Lead.Sentiment.ANGRY
    lead.replies += 1
    if hands_over:
        lead.handed_over_at, lead.handed_over_because = now, decision.reason[:200]
    lead.summary = lead_summary(lead=lead, decision=decision)
    lead.save()
    reply = message_record_from_assistant(
        business_number=number,
        contact=contact,
        request=request,
        text=decision.reply
        if decision.action != OFFER_CALL_BUTTON
        else f"{decision.reply} [{CALL_BUTTON_TEXT}]",
    )
    if hands_over:
        conversation_hand_over(conversation_id=conversation.pk)
    return reply


def lead_summary(*, lead: Lead, decision: Decision) -> str:
    """The paragraph an agent reads on the ring and in the inbox: what the customer wants, what they
    said of themselves, the lead's score and mood, and what the assistant did."""
    sentences = [f"The customer {lead.intent}."]
    labels = dict(LeadField.choices)
    stated = [f"{labels.get(name, name).lower()}: {value}" for name, value in lead.fields.items()]
    if stated:
        sentences.append("They said " + "; ".join(stated) + ".")
    if decision.action == ANSWER_FAQ and decision.reply:
        sentences.append("The assistant answered from the knowledge base.")
    hot = " (hot)" if decision.action == OFFER_CALL_BUTTON and decision.reason == "hot lead" else ""
    sentences.append(f"Lead score {lead.score} of 100{hot}; {lead.get_sentiment_display().lower()}.")
    if lead.call_button_sent_at is not None:
        sentences.append("The assistant sent the call button.")
    if lead.handed_over_at is not None:
        sentences.append(
            "Handed to an agent: " + INTENTS.get(lead.handed_over_because, lead.handed_over_because) + "."
        )
    return " ".join(sentences)


# --- The safety sweep ---------------------------------------------------------------------------


def assistant_hand_over_overdue(*, older_than: datetime.timedelta = ANSWER_OVERDUE) -> int:
    """Hand to the agents every conversation whose customer has waited on the assistant longer
    than `older_than` (its answer was lost, or failed): how many."""
    cutoff = timezone.now() - older_than
    overdue = 0
    for conversation in Conversation.objects.filter(
        state=Conversation.State.ASSISTANT, last_message_at__lt=cutoff
    ):
        last = _unanswered(conversation).last()
        if last is not None and last.created_at < cutoff:
            overdue += conversation_hand_over(conversation_id=conversation.pk) is not None
    return overdue
