"""Scripted chats: a simulated customer writes to the business, reads what comes back, and answers.

A chat is a script (`ChatScript`): its first line opens it; then the customer waits for the
business's reply (up to `reply_timeout_s`), reads the replies that come together (those within
`settle_s` of each other, as a person reads a burst of messages), and answers: taps a call button
when the script says so, answers the question a reply asks when the script has an answer for it
("How many people are in your team?": "We are 25 people"), or else says its next line. It ends
when the customer has nothing more to say, when no reply comes in time, or with the tap of a call
button (a user-initiated call carrying the button's payload, WHATSAPP_API.md §4.3). The transcript
keeps both sides, the business's text replies and interactive call buttons alike.

The business's replies reach a chat through the customer's `on_message` (customers.py), and the
customer's lines reach the business as Meta's message webhooks (§6.4).
"""

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from whatsapp.sandbox.meta import SentMessage

if TYPE_CHECKING:
    from whatsapp.sandbox.customers import CustomerCall, SimulatedCustomer

# How a chat ended.
RUNNING = "running"
FINISHED = "finished"  # the customer had nothing more to say
NO_REPLY = "no_reply"  # the business did not answer in time
CALLED = "called"  # the customer tapped a call button and the call was placed
CALL_NOT_PLACED = "call_not_placed"  # tapped, but WhatsApp placed no call (calling off, closed)


@dataclass(frozen=True)
class Answer:
    """What the customer says to a question (a sentence ending in "?") matching `asks`, in any case."""

    asks: str
    says: str

    def fits(self, text: str) -> bool:
        return re.search(self.asks, text, re.IGNORECASE) is not None


QUESTION = re.compile(r"[^.?!]*\?")  # a sentence that asks

# Answers to the qualification questions (the plan, the team's size, the timeline).
PLAN_ANSWER = Answer(asks=r"\bplans?\b", says="The Pro plan")
TEAM_SIZE_ANSWER = Answer(asks=r"\bteam\b|how many (?:people|users|seats|agents)", says="We are 25 people")
TIMELINE_ANSWER = Answer(asks=r"\bwhen\b|\bstart\b|timeline", says="Next month")
QUALIFICATION_ANSWERS = (TEAM_SIZE_ANSWER, TIMELINE_ANSWER, PLAN_ANSWER)


@dataclass(frozen=True)
class ChatScript:
    """What a customer says in a chat: `lines` in order (the first opens the chat, each next one after
    a reply that asks nothing in `answers`), and whether a call button is tapped when one arrives."""

    name: str
    lines: tuple[str, ...]
    answers: tuple[Answer, ...] = ()
    taps_call_button: bool = False
    max_messages: int = 8  # the customer's messages at most: a business that keeps asking is left

    def __post_init__(self) -> None:
        if not self.lines:
            raise ValueError("a chat script needs a first line")


FAQ = ChatScript(name="faq", lines=("How much is the Pro plan?",))
QUALIFICATION = ChatScript(
    name="qualification", lines=("Hi, I am looking at your product",), answers=QUALIFICATION_ANSWERS
)
ASKS_FOR_PERSON = ChatScript(name="asks_for_person", lines=("Hi, can I talk to someone?",))
ANGRY = ChatScript(
    name="angry",
    lines=("This is ridiculous!!! I was charged twice and nobody answers. I want a refund.",),
)
HOT_LEAD = ChatScript(
    name="hot_lead",
    lines=("We want to buy the Pro plan for 25 people this week",),
    answers=QUALIFICATION_ANSWERS,
    taps_call_button=True,
)
# For a customer of a country the business may not call (settings.OUTBOUND_BLOCKED_COUNTRIES): asks
# for a call back, and calls in with the button the business offers instead.
RED_LIST = ChatScript(
    name="red_list", lines=("Hello, can someone call me about my order?",), taps_call_button=True
)
SCRIPTS = {script.name: script for script in (FAQ, QUALIFICATION, ASKS_FOR_PERSON, ANGRY, HOT_LEAD, RED_LIST)}


@dataclass(frozen=True)
class ChatEntry:
    """One message of the transcript. `sender` is customer or business; `kind` is text, call_button,
    template, another interactive type, or call (the customer's tap of a call button)."""

    sender: str
    kind: str
    text: str
    message_id: str
    at: datetime


@dataclass
class Chat:
    customer: "SimulatedCustomer"
    phone_number_id: str
    script: ChatScript
    reply_timeout_s: float = 30.0
    settle_s: float = 0.3
    call_talk_s: float | None = 20.0  # a call from a button is hung up after this long once answered
    transcript: list[ChatEntry] = field(default_factory=list)
    outcome: str = RUNNING
    call: "CustomerCall | None" = None
    arrived: asyncio.Queue = field(default_factory=asyncio.Queue)
    run_task: "asyncio.Task[Chat] | None" = None

    @property
    def is_live(self) -> bool:
        return self.outcome == RUNNING

    @property
    def replies(self) -> list[ChatEntry]:
        return [entry for entry in self.transcript if entry.sender == "business"]

    @property
    def call_buttons(self) -> list[ChatEntry]:
        return [entry for entry in self.replies if entry.kind == "call_button"]

    def receive(self, message: SentMessage) -> None:
        """A message of the business to the customer on this chat's number."""
        self.arrived.put_nowait(message)

    async def run(self) -> "Chat":
        """Hold the chat to its end; returns itself with its transcript and outcome."""
        try:
            await self._run()
        finally:
            if self.outcome == RUNNING:  # cancelled (the customer was closed)
                self.outcome = FINISHED
        return self

    async def _run(self) -> None:
        lines = list(self.script.lines)
        self._say(lines.pop(0))
        sent = 1
        while True:
            batch = await self._replies()
            if not batch:
                self.outcome = NO_REPLY
                return
            button = next((message for message in reversed(batch) if _is_call_button(message)), None)
            if button is not None and self.script.taps_call_button:
                await self._tap(button)
                return
            says = self._answer_to(batch)
            if says is None and lines:
                says = lines.pop(0)
            if says is None or sent >= self.script.max_messages:
                self.outcome = FINISHED
                return
            self._say(says)
            sent += 1

    async def _replies(self) -> list[SentMessage]:
        """The next reply and those that follow it within `settle_s`; none if none came in time."""
        try:
            batch = [await asyncio.wait_for(self.arrived.get(), self.reply_timeout_s)]
        except TimeoutError:
            return []
        while True:
            try:
                batch.append(await asyncio.wait_for(self.arrived.get(), self.settle_s))
            except TimeoutError:
                break
        for message in batch:
            self.transcript.append(_entry_of(message))
        return batch

    def _answer_to(self, batch: list[SentMessage]) -> str | None:
        """The script's answer to the latest question among the replies (the last one asked)."""
        for message in reversed(batch):
            for question in reversed(QUESTION.findall(_text_of(message))):
                for answer in self.script.answers:
                    if answer.fits(question):
                        return answer.says
        return None

    def _say(self, text: str) -> None:
        message_id = self.customer.send_text(self.phone_number_id, text)
        self._note("customer", "text", text, message_id)

    async def _tap(self, button: SentMessage) -> None:
        self.call = await self.customer.tap_call_button(button, talk_s=self.call_talk_s)
        if self.call is None:
            self._note("customer", "call", "", "")
            self.outcome = CALL_NOT_PLACED
            return
        self._note("customer", "call", self.call.call.cta_payload, self.call.call.call_id)
        self.outcome = CALLED

    def _note(self, sender: str, kind: str, text: str, message_id: str) -> None:
        self.transcript.append(
            ChatEntry(sender=sender, kind=kind, text=text, message_id=message_id, at=self.customer.meta.now())
        )


def _is_call_button(message: SentMessage) -> bool:
    return message.message_type == "interactive" and message.body["interactive"].get("type") == "voice_call"


def _text_of(message: SentMessage) -> str:
    """What the customer reads of a message: a text's body, an interactive message's body text, or
    a template's name with the text parameters filled in (the sandbox keeps no template bodies)."""
    content: Any = message.body.get(message.message_type) or {}
    if message.message_type == "text":
        return content.get("body", "")
    if message.message_type == "interactive":
        return (content.get("body") or {}).get("text", "")
    parameters = [
        parameter.get("text", "")
        for component in content.get("components") or []
        for parameter in component.get("parameters") or []
        if parameter.get("type") == "text"
    ]
    return " ".join([content.get("name", ""), *parameters]).strip()


def _entry_of(message: SentMessage) -> ChatEntry:
    if _is_call_button(message):
        kind = "call_button"
    elif message.message_type == "interactive":
        kind = message.body["interactive"].get("type", "interactive")
    else:
        kind = message.message_type
    return ChatEntry(
        sender="business",
        kind=kind,
        text=_text_of(message),
        message_id=message.message_id,
        at=message.sent_at,
    )
