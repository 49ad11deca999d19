"""Simulated WhatsApp customers: real WebRTC peers that call, answer, talk, write, send photos, voice
notes and documents, reply and tap buttons, and hold scripted chats (chats.py)."""

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
from babel.languages import get_official_languages

from whatsapp.sandbox import files
from whatsapp.sandbox.chats import Chat, ChatScript
from whatsapp.sandbox.media import CustomerMedia, MediaError
from whatsapp.sandbox.meta import SandboxCall, SandboxMeta, SentMessage, keep_newest

logger = logging.getLogger(__name__)

AUDIO_DIR = Path(__file__).resolve().parent / "audio"
CONVERSATION_DIR = AUDIO_DIR / "conversation"  # <language>/1.wav, 2.wav, …: a customer's side of a call
FALLBACK_LANGUAGE = "en"


def conversation_languages() -> set[str]:
    return {path.name for path in CONVERSATION_DIR.iterdir() if path.is_dir()}


def conversation_script(language: str) -> tuple[Path, ...]:
    """A customer's phrases in ``language`` (greeting, the reason for calling, an answer, goodbye), in
    the order they are said; in English when there are none in ``language``."""
    folder = CONVERSATION_DIR / (language if language in conversation_languages() else FALLBACK_LANGUAGE)
    return tuple(sorted(folder.glob("*.wav"), key=lambda path: int(path.stem)))


CUSTOMER_HISTORY = 100  # calls, messages received and chats a customer keeps: the newest (and the live ones)


@dataclass
class Behaviour:
    """How a customer reacts. `business_call`: answer, decline or ignore (let it ring out).

    `permission_reply`: accept_temporary, accept_permanent, reject or ignore.
    """

    business_call: str = "answer"
    answer_after_s: float = 0.5
    talk_s: float | None = None  # hang up a business call after this long; None = wait for the business
    permission_reply: str = "accept_temporary"
    reply_after_s: float = 0.05
    reads_messages: bool = True


@dataclass
class CustomerCall:
    call: SandboxCall
    media: CustomerMedia
    recording: Path | None
    talk_s: float | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


class SimulatedCustomer:
    """A WhatsApp user. In a call it hears the business's prompts and hold audio in silence, then holds
    its side of the conversation (``script``: by default the phrases in its language, else English)
    with whoever answers: a phrase each time the other side has spoken and paused (``CustomerMedia``).
    ``speech`` is said at the very start of a call instead (looped for the whole call with
    ``is_speech_looped``, and then no script is said).
    """

    def __init__(
        self,
        *,
        meta: SandboxMeta,
        wa_id: str,
        name: str,
        speech: Path | None = None,
        is_speech_looped: bool = False,
        script: tuple[Path, ...] | None = None,
        record_dir: Path | None = None,
        behaviour: Behaviour | None = None,
        is_on_whatsapp: bool = True,
        supports_call_buttons: bool = True,
        supports_permission_requests: bool = True,
    ) -> None:
        self.meta = meta
        self.wa_id = wa_id
        self.name = name
        self.speech = speech
        self.is_speech_looped = is_speech_looped  # keeps talking for the whole call
        self.script = conversation_script(self.language) if script is None else script
        self.record_dir = record_dir
        self.behaviour = behaviour or Behaviour()
        self.is_on_whatsapp = is_on_whatsapp
        self.supports_call_buttons = supports_call_buttons
        self.supports_permission_requests = supports_permission_requests
        # Of each, the newest CUSTOMER_HISTORY (and every live call and chat), for the sandbox's memory.
        self.calls: dict[str, CustomerCall] = {}
        self.inbox: list[SentMessage] = []
        self.chats: list[Chat] = []
        self._call_numbers = itertools.count(1)
        self.message_arrived = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    def __repr__(self) -> str:
        return f"<SimulatedCustomer {self.name} +{self.wa_id}>"

    @property
    def country(self) -> str:
        return phonenumbers.region_code_for_number(phonenumbers.parse("+" + self.wa_id))

    @property
    def language(self) -> str:
        """The first official language of the customer's country that has a conversation recorded."""
        try:
            country = self.country or ""
        except phonenumbers.NumberParseException:  # a made-up id: no country, no language of its own
            country = ""
        recorded = conversation_languages()
        official = get_official_languages(country, de_facto=True)
        return next((language for language in official if language in recorded), FALLBACK_LANGUAGE)

    def _new_media(self, recording: Path | None) -> CustomerMedia:
        return CustomerMedia(
            play=self.speech, record_to=recording, loop=self.is_speech_looped, script=self.script
        )

    # --- What the customer does -------------------------------------------------------------

    async def place_call(
        self,
        phone_number_id: str,
        *,
        talk_s: float | None = None,
        cta_payload: str = "",
        deeplink_payload: str = "",
        with_video: bool = False,
    ) -> CustomerCall | None:
        """Tap Call. Returns None when WhatsApp does not place the call (calling off, closed, full).

        With `talk_s` the customer hangs up that long after the business answers; `with_video`:
        a video call (the offer carries a video section too, which the business declines).
        """
        recording = self._recording_path()
        media = self._new_media(recording)
        sdp = await media.create_offer(with_video=with_video)
        call = self.meta.customer_call_business(
            self, phone_number_id, sdp=sdp, cta_payload=cta_payload, deeplink_payload=deeplink_payload
        )
        if call is None:
            await media.close()
            return None
        customer_call = CustomerCall(call=call, media=media, recording=recording, talk_s=talk_s)
        self.calls[call.call_id] = customer_call
        keep_newest(self.calls, limit=CUSTOMER_HISTORY, is_kept=lambda kept: kept.call.is_live)
        timeout = self.meta.rules.unanswered_user_call_timeout_s
        customer_call.timers.append(self._later(timeout, self.meta.user_call_unanswered, call))
        return customer_call

    async def hang_up(self, call: SandboxCall) -> None:
        self.meta.customer_hang_up(call)
        await self._finish(call)

    async def tap_call_button(
        self, message: SentMessage, *, talk_s: float | None = None
    ) -> CustomerCall | None:
        """Tap the call button of a received `voice_call` message: a call carrying its payload."""
        parameters = message.body["interactive"]["action"].get("parameters") or {}
        return await self.place_call(
            message.phone_number_id, talk_s=talk_s, cta_payload=parameters.get("payload", "")
        )

    def send_text(self, phone_number_id: str, text: str) -> str:
        return self.meta.customer_send(self, phone_number_id, {"type": "text", "text": {"body": text}})

    async def chat(
        self, phone_number_id: str, script: ChatScript, *, reply_timeout_s: float = 30.0, **options: Any
    ) -> Chat:
        """Hold a scripted chat with the business on the number to its end (chats.py): the chat, with
        its transcript and how it ended. `options` are `Chat`'s (`settle_s`, `call_talk_s`)."""
        return await self.start_chat(
            phone_number_id, script, reply_timeout_s=reply_timeout_s, **options
        ).run_task

    def start_chat(self, phone_number_id: str, script: ChatScript, **options: Any) -> Chat:
        """Begin a scripted chat in the background (see `chat`); one at a time with a number, as a
        WhatsApp user has one thread with a business."""
        if any(chat.is_live and chat.phone_number_id == phone_number_id for chat in self.chats):
            raise ValueError(f"{self!r} is already chatting with {phone_number_id}")
        self.meta.number(phone_number_id)  # an unknown number is refused at once
        chat = Chat(customer=self, phone_number_id=phone_number_id, script=script, **options)
        self.chats.append(chat)
        if len(self.chats) > CUSTOMER_HISTORY:
            self.chats = [kept for kept in self.chats[:-CUSTOMER_HISTORY] if kept.is_live] + self.chats[
                -CUSTOMER_HISTORY:
            ]
        chat.run_task = self._spawn(chat.run())
        return chat

    @property
    def is_chatting(self) -> bool:
        return any(chat.is_live for chat in self.chats)

    def send_photo(self, phone_number_id: str, *, caption: str = "") -> str:
        """Send a photo (a small generated PNG), with a caption."""
        return self.meta.customer_send_media(
            self,
            phone_number_id,
            kind="image",
            content=files.photo_png(),
            mime_type="image/png",
            caption=caption,
        )

    def send_voice_note(self, phone_number_id: str) -> str:
        """Record and send a voice note: one of the customer's phrases, as Ogg Opus."""
        return self.meta.customer_send_media(
            self, phone_number_id, kind="audio", content=files.voice_note_ogg(),
            mime_type="audio/ogg; codecs=opus", voice=True,
        )  # fmt: skip

    def send_document(
        self, phone_number_id: str, *, filename: str = "invoice-1042.pdf", caption: str = ""
    ) -> str:
        """Send a one-page PDF document."""
        return self.meta.customer_send_media(
            self, phone_number_id, kind="document", content=files.document_pdf(),
            mime_type="application/pdf", filename=filename, caption=caption,
        )  # fmt: skip

    def reply_button(self, phone_number_id: str, *, button_id: str, title: str, context_id: str) -> str:
        return self.meta.customer_send(
            self,
            phone_number_id,
            {
                "type": "interactive",
                "context": {"from": self.meta.numbers[phone_number_id].digits, "id": context_id},
                "interactive": {"type": "button_reply", "button_reply": {"id": button_id, "title": title}},
            },
        )

    def arrive_from_ad(self, phone_number_id: str, *, text: str, ad_id: str, headline: str = "") -> str:
        """Click-to-WhatsApp: the first message carries the ad's referral (the business's answer within
        24 h opens the free entry point)."""
        referral = {
            "source_url": f"https://fb.me/{ad_id}",
            "source_id": ad_id,
            "source_type": "ad",
            "headline": headline,
            "body": "",
            "ctwa_clid": f"clid-{ad_id}",
        }
        return self.meta.customer_send(
            self, phone_number_id, {"type": "text", "text": {"body": text}, "referral": referral}
        )

    def stop_marketing(self, phone_number_id: str, *, as_system_message: bool = False) -> None:
        """Stop the number's marketing messages ("Offers and announcements"): WhatsApp tells the business
        (`user_preferences`, or a system message), and refuses its marketing templates with 131050."""
        self.meta.customer_marketing_choice(
            self, phone_number_id, stop=True, as_system_message=as_system_message
        )

    def resume_marketing(self, phone_number_id: str, *, as_system_message: bool = False) -> None:
        """Take the number's marketing messages again."""
        self.meta.customer_marketing_choice(
            self, phone_number_id, stop=False, as_system_message=as_system_message
        )

    def reply_to_permission_request(
        self, message: SentMessage, *, accept: bool, permanent: bool = False
    ) -> None:
        self.meta.customer_reply_permission(message, accept=accept, permanent=permanent)

    async def close(self) -> None:
        for customer_call in list(self.calls.values()):
            if customer_call.call.is_live:
                self.meta.customer_hang_up(customer_call.call)
            await self._finish(customer_call.call)
        for task in list(self._tasks):
            task.cancel()

    # --- What happens to the customer (called by the sandbox's rules) ------------------------

    def on_call_answered(self, call: SandboxCall) -> None:
        self._spawn(self._connect_answer(call))

    def on_call_ended(self, call: SandboxCall) -> None:
        self._spawn(self._finish(call))

    def on_business_call(self, call: SandboxCall) -> None:
        self._spawn(self._ring(call))

    def on_message(self, message: SentMessage) -> None:
        self.inbox.append(message)
        keep_newest(self.inbox, limit=CUSTOMER_HISTORY)
        self.message_arrived.set()
        for chat in self.chats:
            if chat.is_live and chat.phone_number_id == message.phone_number_id:
                chat.receive(message)
        if self.behaviour.reads_messages:
            self._later(self.behaviour.reply_after_s, self.meta.customer_read, message)
        reply = self.behaviour.permission_reply
        if self.meta.is_permission_request(message) and reply != "ignore":
            accept, permanent = reply.startswith("accept"), reply == "accept_permanent"
            self._later(
                self.behaviour.reply_after_s, self.meta.customer_reply_permission, message, accept, permanent
            )

    # --- Inner workings ---------------------------------------------------------------------

    async def _connect_answer(self, call: SandboxCall) -> None:
        customer_call = self.calls.get(call.call_id)
        if customer_call is None:
            return
        try:
            await customer_call.media.accept_answer(call.answer_sdp)
        except MediaError:
            logger.exception("%r could not apply the business's answer", self)
            self.meta.customer_hang_up(call)
            await self._finish(call)
            return
        customer_call.answered.set()
        if customer_call.talk_s is not None:
            customer_call.timers.append(self._later(customer_call.talk_s, self._spawn_hang_up, call))

    async def _ring(self, call: SandboxCall) -> None:
        recording = self._recording_path()
        media = self._new_media(recording)
        customer_call = CustomerCall(call=call, media=media, recording=recording)
        self.calls[call.call_id] = customer_call
        keep_newest(self.calls, limit=CUSTOMER_HISTORY, is_kept=lambda kept: kept.call.is_live)
        try:
            call.answer_sdp = await media.answer(call.offer_sdp)
        except MediaError:
            logger.exception("%r could not answer the business's offer", self)
            self.meta.business_call_unanswered(call)
            await self._finish(call)
            return
        self.meta.customer_media_connected(call)
        behaviour = self.behaviour
        if behaviour.business_call == "answer":
            customer_call.timers.append(self._later(behaviour.answer_after_s, self._pick_up, call))
        elif behaviour.business_call == "decline":
            customer_call.timers.append(self._later(behaviour.answer_after_s, self._decline, call))
        else:
            timeout = self.meta.rules.business_call_ring_timeout_s
            customer_call.timers.append(self._later(timeout, self._ring_out, call))

    def _pick_up(self, call: SandboxCall) -> None:
        self.meta.customer_answer(call)
        customer_call = self.calls[call.call_id]
        customer_call.answered.set()
        if self.behaviour.talk_s is not None:
            customer_call.timers.append(self._later(self.behaviour.talk_s, self._spawn_hang_up, call))

    def _decline(self, call: SandboxCall) -> None:
        self.meta.customer_decline(call)
        self._spawn(self._finish(call))

    def _ring_out(self, call: SandboxCall) -> None:
        self.meta.business_call_unanswered(call)

    def _spawn_hang_up(self, call: SandboxCall) -> None:
        self._spawn(self.hang_up(call))

    async def _finish(self, call: SandboxCall) -> None:
        customer_call = self.calls.get(call.call_id)
        if customer_call is None:
            return
        for timer in customer_call.timers:
            timer.cancel()
        await customer_call.media.close()
        customer_call.ended.set()

    def _recording_path(self) -> Path | None:
        if self.record_dir is None:
            return None
        self.record_dir.mkdir(parents=True, exist_ok=True)
        return self.record_dir / f"{self.wa_id}-{next(self._call_numbers)}.wav"

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _later(self, delay_s: float, callback, *args) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay_s, callback, *args)
