"""A campaign's audience: simulated customers who receive a business's template messages and react to
them at configured rates, as a broadcast day would bring.

Each member is a `SimulatedCustomer` (real WebRTC calls, customers.py). When a template reaches one
(Meta has already told the business `sent` and `delivered`, meta.py), the member draws its reactions
from a random stream of its own, seeded by the crowd's seed, its number and how many templates it
has had, so a run with one seed reacts the same whatever order the sends arrive in:

- it reads the message (a `read` status, WHATSAPP_API.md §6.5) with `read_rate`;
- it replies with a text (`reply_rate`), taps the template's voice-call button (`tap_rate`): a real
  call to the number whose connect webhook carries the button's payload as `cta_payload` (§1.5,
  §4.4), or stops the number's marketing messages (`stop_rate`, `user_preferences`, §10.2).

Rates are of the recipients, drawn independently; a member who replies, taps or stops has read the
message first (its read comes first). Delays are drawn from exponential distributions with the
configured means, a reaction's counted from the read. Crowd calls are real WebRTC peers, so at
most `max_concurrent_calls` of them are live at once; a tap beyond that waits for a free line.
"""

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from whatsapp.sandbox.customers import Behaviour, SimulatedCustomer
from whatsapp.sandbox.load import FIRST_NAMES, LAST_NAMES, REGIONS
from whatsapp.sandbox.meta import SandboxMeta, SentMessage
from whatsapp.sandbox.server import Sandbox

logger = logging.getLogger(__name__)

REPLIES = (
    "Sounds interesting, tell me more",
    "How much is it?",
    "Is this offer still on?",
    "Not now, thanks",
    "Can someone call me?",
)
MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


@dataclass(frozen=True)
class CrowdConfig:
    """How big the crowd is and how it reacts to a template. Rates are fractions of the recipients;
    `*_after_s` are the means of exponential delays (a reaction's counted from the read)."""

    size: int = 50
    regions: tuple[str, ...] = REGIONS
    read_rate: float = 0.8
    read_after_s: float = 5.0
    reply_rate: float = 0.05
    reply_after_s: float = 30.0
    tap_rate: float = 0.05
    tap_after_s: float = 60.0
    stop_rate: float = 0.01
    stop_after_s: float = 20.0
    call_s: float = 30.0  # a tapping member hangs up this long after the business answers
    max_concurrent_calls: int = 20
    seed: int = 1

    def __post_init__(self) -> None:
        problems = []
        if self.size < 0:
            problems.append("size must be 0 or more")
        for name in ("read_rate", "reply_rate", "tap_rate", "stop_rate"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} must be within 0-1")
        for name in ("read_after_s", "reply_after_s", "tap_after_s", "stop_after_s", "call_s"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be 0 or more")
        if self.max_concurrent_calls < 1:
            problems.append("max_concurrent_calls must be at least 1")
        unknown = [region for region in self.regions if region not in phonenumbers.SUPPORTED_REGIONS]
        if not self.regions or unknown:
            problems.append(f"regions must be country codes such as GB (not {', '.join(unknown) or 'none'})")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class Reactions:
    """What one member does with one template: whether it reads, replies, taps, stops, and when
    (seconds after the template arrived)."""

    reads: bool
    read_at_s: float
    reply_at_s: float | None
    tap_at_s: float | None
    stop_at_s: float | None
    reply_text: str


def reactions_for(config: CrowdConfig, *, wa_id: str, nth: int) -> Reactions:
    """The reactions of member `wa_id` to its `nth` template (from 1): the same for the same seed."""
    rng = random.Random(f"{config.seed}:{wa_id}:{nth}")
    read, reply, tap, stop = (rng.random() for _ in range(4))
    means = (config.read_after_s, config.reply_after_s, config.tap_after_s, config.stop_after_s)
    read_at, reply_after, tap_after, stop_after = (_exponential(rng, mean) for mean in means)
    reply_text = rng.choice(REPLIES)
    replies, taps, stops = reply < config.reply_rate, tap < config.tap_rate, stop < config.stop_rate
    return Reactions(
        reads=read < config.read_rate or replies or taps or stops,
        read_at_s=read_at,
        reply_at_s=read_at + reply_after if replies else None,
        tap_at_s=read_at + tap_after if taps else None,
        stop_at_s=read_at + stop_after if stops else None,
        reply_text=reply_text,
    )


def _exponential(rng: random.Random, mean: float) -> float:
    return rng.expovariate(1 / mean) if mean > 0 else 0.0


def crowd_numbers(
    count: int, *, regions: Sequence[str], seed: int, taken: frozenset[str] = frozenset()
) -> list[str]:
    """`count` distinct WhatsApp ids, valid mobile numbers of `regions` in turn (phonenumbers' example
    mobile number of the region with its last digits drawn at random), none of them in `taken`."""
    rng = random.Random(f"numbers:{seed}")
    found: list[str] = []
    seen = set(taken)
    for index in range(count):
        region = regions[index % len(regions)]
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        if example is None:
            raise ValueError(f"phonenumbers knows no mobile numbers of {region}")
        national = str(example.national_number)
        tail = min(6, len(national) - 2)
        for _attempt in range(200):
            digits = "".join(rng.choice("0123456789") for _ in range(tail))
            number = phonenumbers.parse(f"+{example.country_code}{national[:-tail]}{digits}")
            wa_id = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")
            if (
                wa_id not in seen
                and phonenumbers.is_valid_number(number)
                and phonenumbers.number_type(number) in MOBILE_TYPES
            ):
                break
        else:
            raise ValueError(f"could not find a free mobile number of {region}")
        seen.add(wa_id)
        found.append(wa_id)
    return found


def voice_call_payload(meta: SandboxMeta, message: SentMessage) -> str | None:
    """The payload a tap on the template's voice-call button carries (WHATSAPP_API.md §4.4): the
    send's `voice_call` button parameter, else "" when the template has the button; None when there
    is no button to tap."""
    template = message.body.get("template") or {}
    for component in template.get("components") or []:
        if not (
            isinstance(component, dict)
            and str(component.get("type", "")).lower() == "button"
            and component.get("sub_type") == "voice_call"
        ):
            continue
        for parameter in component.get("parameters") or []:
            if isinstance(parameter, dict) and parameter.get("type") == "payload":
                return str(parameter.get("payload") or "")
        return ""
    registered = meta.templates.get(template.get("name"), {}).get("listed", {}).get("components") or []
    has_button = any(
        isinstance(button, dict) and str(button.get("type", "")).upper() == "VOICE_CALL"
        for component in registered
        if isinstance(component, dict) and str(component.get("type", "")).upper() == "BUTTONS"
        for button in component.get("buttons") or []
    )
    return "" if has_button else None


@dataclass
class Reaction:
    """One thing a member did, for tests and the log: read, reply, tap, stop, and `call` for a tap
    that WhatsApp placed as a call (`call_id`)."""

    kind: str
    wa_id: str
    message_id: str
    call_id: str = ""
    cta_payload: str = ""


class CrowdMember(SimulatedCustomer):
    """A simulated customer who reacts to templates as its crowd says (and reads anything else)."""

    def __init__(self, *, crowd: "Crowd", **options: Any) -> None:
        super().__init__(**options)
        self.crowd = crowd
        self.templates_received = 0

    def on_message(self, message: SentMessage) -> None:
        super().on_message(message)  # reading is decided here (`reads_messages` is off)
        if message.message_type == "template":
            self.templates_received += 1
            self.crowd.react(self, message)
        else:
            self._later(self.behaviour.reply_after_s, self.meta.customer_read, message)


@dataclass
class Crowd:
    """The members of a sandbox's crowd, what they did, and their calls in progress."""

    sandbox: Sandbox
    config: CrowdConfig
    members: list[CrowdMember] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)
    live_calls: int = 0
    peak_calls: int = 0
    _call_slots: asyncio.Semaphore | None = None
    _timers: list[asyncio.TimerHandle] = field(default_factory=list)

    @property
    def meta(self) -> SandboxMeta:
        return self.sandbox.meta

    def counts(self) -> Counter:
        """How many of each reaction so far (read, reply, tap, call, stop)."""
        return Counter(reaction.kind for reaction in self.reactions)

    def react(self, member: CrowdMember, message: SentMessage) -> None:
        """Plan a member's reactions to a template it just received (called on the sandbox's loop)."""
        plan = reactions_for(self.config, wa_id=member.wa_id, nth=member.templates_received)
        later = asyncio.get_running_loop().call_later
        if plan.reads:
            self._timers.append(later(plan.read_at_s, self._read, member, message))
        if plan.reply_at_s is not None:
            self._timers.append(later(plan.reply_at_s, self._reply, member, message, plan.reply_text))
        if plan.stop_at_s is not None:
            self._timers.append(later(plan.stop_at_s, self._stop, member, message))
        payload = voice_call_payload(self.meta, message)
        if plan.tap_at_s is not None and payload is not None:
            self._timers.append(later(plan.tap_at_s, self._start_tap, member, message, payload))

    def _read(self, member: CrowdMember, message: SentMessage) -> None:
        self.meta.customer_read(message)
        self.reactions.append(Reaction("read", member.wa_id, message.message_id))

    def _reply(self, member: CrowdMember, message: SentMessage, text: str) -> None:
        member.send_text(message.phone_number_id, text)
        self.reactions.append(Reaction("reply", member.wa_id, message.message_id))

    def _stop(self, member: CrowdMember, message: SentMessage) -> None:
        member.stop_marketing(message.phone_number_id)
        self.reactions.append(Reaction("stop", member.wa_id, message.message_id))

    def _start_tap(self, member: CrowdMember, message: SentMessage, payload: str) -> None:
        self.reactions.append(Reaction("tap", member.wa_id, message.message_id, cta_payload=payload))
        member._spawn(self._tap(member, message, payload))

    async def _tap(self, member: CrowdMember, message: SentMessage, payload: str) -> None:
        """A call from the member on a free line, held until it ends (the member hangs up
        `call_s` after the business answers, or the business ends it, or nobody answers)."""
        if self._call_slots is None:
            self._call_slots = asyncio.Semaphore(self.config.max_concurrent_calls)
        async with self._call_slots:
            self.live_calls += 1
            self.peak_calls = max(self.peak_calls, self.live_calls)
            try:
                placed = await member.place_call(
                    message.phone_number_id, talk_s=self.config.call_s, cta_payload=payload
                )
                if placed is None:
                    logger.info("%r tapped Call but WhatsApp did not place the call", member)
                    return
                self.reactions.append(
                    Reaction("call", member.wa_id, message.message_id, placed.call.call_id, payload)
                )
                await placed.ended.wait()
            finally:
                self.live_calls -= 1

    def stop(self) -> None:
        """Forget the reactions not yet due (the members' calls end with the sandbox)."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()


def start_crowd(sandbox: Sandbox, config: CrowdConfig | None = None) -> Crowd:
    """Add a crowd of `config.size` members to the sandbox (on its loop, or before it runs): from
    now on each reacts to the templates sent to it."""
    config = config or CrowdConfig()
    crowd = Crowd(sandbox=sandbox, config=config)
    rng = random.Random(f"names:{config.seed}")
    wa_ids = crowd_numbers(
        config.size, regions=config.regions, seed=config.seed, taken=frozenset(sandbox.meta.customers)
    )
    for wa_id in wa_ids:
        member = CrowdMember(
            crowd=crowd,
            meta=sandbox.meta,
            wa_id=wa_id,
            name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            record_dir=sandbox.record_dir,
            behaviour=Behaviour(reads_messages=False, talk_s=config.call_s),
        )
        sandbox.meta.add_customer(member)
        sandbox.customers.append(member)
        crowd.members.append(member)
    return crowd
