from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import caches

from agents.models import QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory, UserFactory
from calls.models import Call
from calls.tests.factories import CallFactory, ContactFactory
from integrations.models import ApiKey
from integrations.services import api_key_create
from messaging.models import Message
from recordings.models import Summary, Transcript
from recordings.services import recording_store
from recordings.tests.test_services import spooled
from whatsapp.tests.factories import BusinessNumberFactory

SAID = "My card is 4111 1111 1111 1111, thanks"


@dataclass
class Business:
    """One business on the shared deployment: its number, queue, agent, a contact, a call and a message."""

    number: object
    queue: object
    agent: object
    contact: object
    call: object
    message: object


def business(name: str, wa_id: str, tmp_path, *, with_recording: bool = True) -> Business:
    number = BusinessNumberFactory(label=name)
    queue = QueueFactory(name=f"{name} care")
    queue.business_numbers.add(number)
    agent = AgentFactory(display_name=f"{name} agent")
    QueueMembership.objects.create(queue=queue, agent=agent)
    contact = ContactFactory(wa_id=wa_id, name=f"{name} customer", country="GB")
    call = CallFactory(
        business_number=number, queue=queue, contact=contact, agent=agent, status=Call.Status.ENDED,
        end_reason=Call.EndReason.COMPLETED, talk_seconds=30,
    )  # fmt: skip
    if with_recording:
        recording = recording_store(
            call_id=call.pk, path=spooled(tmp_path / f"{name}.wav", level=1), duration_s=0.5
        )  # fmt: skip
        Transcript.objects.create(
            call=call, recording=recording, text=SAID, model="tiny.en", seconds_taken=0.1,
            segments=[{"start_s": 0.0, "end_s": 2.0, "speaker": "customer", "text": SAID, "confidence": 0.9}],
        )  # fmt: skip
        Summary.objects.create(
            call=call, paragraph=f"Paid with 4111 1111 1111 1111. {SAID}", intent="billing",
            outcome="resolved", sentiment="positive", sentiment_score=0.5, backend="local",
        )  # fmt: skip
    message = Message.objects.create(
        business_number=number, contact=contact, direction=Message.Direction.INBOUND, message_type="text",
        text=SAID, wa_message_id=f"wamid.{name}", status=Message.Status.RECEIVED,
    )  # fmt: skip
    return Business(number=number, queue=queue, agent=agent, contact=contact, call=call, message=message)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """The users these tests make need no costly hash: the default takes a fifth of a second each,
    most of the time of a test's two businesses."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def floor(recordings_storage, tmp_path):
    """Two businesses on one deployment: ours (Acme) and another (Globex)."""
    caches["api"].clear()
    return business("Acme", "447700900101", tmp_path), business("Globex", "447700900202", tmp_path)


@pytest.fixture
def make_key(floor):
    def make(*scopes: str, business_index: int = 0, rate: int = 120) -> str:
        _, token = api_key_create(
            name="CRM", scopes=list(scopes or [ApiKey.Scope.READ]), created_by_id=None,
            business_number_ids=[floor[business_index].number.pk], rate_limit_per_minute=rate,
        )  # fmt: skip
        return token

    return make


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def supervisor_user():
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["listen_recording"]))
    return user
