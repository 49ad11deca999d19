"""A crowd of simulated customers for demos and load: generated people who keep calling in, and who
keep writing in (scripted chats, chats.py)."""

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence

import phonenumbers

from whatsapp.sandbox.chats import RED_LIST, SCRIPTS, ChatScript
from whatsapp.sandbox.customers import Behaviour, SimulatedCustomer
from whatsapp.sandbox.server import Sandbox

logger = logging.getLogger(__name__)

REGIONS = ("GB", "IN", "BR", "DE", "MX", "ZA", "ES", "ID", "FR", "KE")
FIRST_NAMES = (
    "Amara",
    "Ravi",
    "Lucia",
    "Jonas",
    "Mateo",
    "Thandi",
    "Elena",
    "Putri",
    "Louis",
    "Wanjiru",
    "Omar",
    "Mei",
)
LAST_NAMES = (
    "Okoye",
    "Iyer",
    "Santos",
    "Becker",
    "Hernández",
    "Dlamini",
    "García",
    "Wijaya",
    "Martin",
    "Mwangi",
)


def customer_identity(index: int, rng: random.Random, *, regions: Sequence[str] = REGIONS) -> tuple[str, str]:
    """A WhatsApp id (a valid mobile number of one of `regions`) and a name, unique per index."""
    region = regions[index % len(regions)]
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    national = str(example.national_number)
    suffix = str(index).zfill(3)
    number = phonenumbers.parse(f"+{example.country_code}{national[: -len(suffix)]}{suffix}")
    wa_id = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")
    return wa_id, f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def add_crowd(
    sandbox: Sandbox, *, count: int, seed: int = 1, regions: Sequence[str] = REGIONS
) -> list[SimulatedCustomer]:
    """`count` customers with numbers of `regions` in turn."""
    rng = random.Random(seed)
    crowd = []
    for index in range(count):
        wa_id, name = customer_identity(index, rng, regions=regions)
        behaviour = Behaviour(
            business_call="answer", answer_after_s=rng.uniform(1, 4), talk_s=rng.uniform(20, 60)
        )
        # Each waits through the prompts in silence, then talks in its country's language (or English).
        crowd.append(sandbox.add_customer(wa_id=wa_id, name=name, behaviour=behaviour))
    return crowd


async def keep_calling(
    crowd: list[SimulatedCustomer],
    phone_number_ids: list[str],
    *,
    calls_per_minute: float,
    talk_s: tuple[float, float] = (20, 60),
    stop: asyncio.Event,
    seed: int = 2,
) -> None:
    """Place calls at a steady rate from customers who are not on a call, until `stop` is set."""
    rng = random.Random(seed)
    interval_s = 60.0 / calls_per_minute
    while not stop.is_set():
        idle = [customer for customer in crowd if not any(c.call.is_live for c in customer.calls.values())]
        if idle:
            customer = rng.choice(idle)
            number_id = rng.choice(phone_number_ids)
            placed = await customer.place_call(number_id, talk_s=rng.uniform(*talk_s))
            logger.info("%r %s", customer, "calls" if placed else "could not get through")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


# The scripts the crowd chats with, but RED_LIST: that one is for customers the business may not call.
CROWD_SCRIPTS = tuple(script for script in SCRIPTS.values() if script is not RED_LIST)


async def keep_chatting(
    crowd: list[SimulatedCustomer],
    phone_number_ids: list[str],
    *,
    chats_per_minute: float,
    stop: asyncio.Event,
    red_list_regions: frozenset[str] = frozenset(),
    reply_timeout_s: float = 120.0,
    seed: int = 3,
) -> None:
    """Start scripted chats at a steady rate from customers who are not chatting, until `stop` is
    set: a customer of one of `red_list_regions` (the countries the business may not call) asks to
    be called, the others hold one of the other scripts, picked at random."""
    rng = random.Random(seed)
    interval_s = 60.0 / chats_per_minute
    while not stop.is_set():
        idle = [customer for customer in crowd if not customer.is_chatting]
        if idle:
            customer = rng.choice(idle)
            is_red_listed = customer.country in red_list_regions
            script: ChatScript = RED_LIST if is_red_listed else rng.choice(CROWD_SCRIPTS)
            customer.start_chat(rng.choice(phone_number_ids), script, reply_timeout_s=reply_timeout_s)
            logger.info("%r starts a chat (%s)", customer, script.name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
