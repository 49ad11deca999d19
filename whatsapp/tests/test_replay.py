"""Every webhook body these tests build, and webhook bodies others published (Meta's pages, pywa's
fixtures), replayed signed through the endpoint: each is answered 200 and each item in it is stored,
as an event (handled; unhandled: a kind nobody acts on; or rejected, with why: content that breaks
Meta's rules, never applied) or as a problem with its reason on the delivery. Nothing is dropped
without a stored reason.

The published bodies are in `published/`, as their authors published them; `SOURCES` names where
each came from (not the body: bodies are signed as they are). A file holding one body is POSTed byte
for byte; pywa's files hold several bodies by name, each POSTed on its own.
"""

import contextlib
import inspect
import json
from pathlib import Path

import pytest
from django.db import transaction

from calls.models import Call
from whatsapp.events import CALL_STATUSES, EVENT_KINDS, MESSAGE_STATUSES, parse_delivery
from whatsapp.models import WebhookDelivery, WebhookEvent
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db

PUBLISHED = Path(__file__).parent / "published"
PYWA = (
    "github.com/david-lev/pywa, tests/data/updates/{name} at commit 0bcf2f192ff3cf8ae24a425d85f4295e3cca7a62"
)
META_CALLING_REFERENCE = (
    "Meta, Calling API reference, section {section!r}: "
    "https://developers.facebook.com/documentation/business-messaging/whatsapp/calling/reference/ "
    "(the revision with business-scoped user ids; the example bodies as the page prints them)"
)
SOURCES = {
    "meta/calling_reference_call_created.json": META_CALLING_REFERENCE.format(section="Call created webhook"),
    "meta/calling_reference_call_recording.json": META_CALLING_REFERENCE.format(
        section="Call recording webhook"
    ),
    "meta/calling_reference_call_transcription.json": META_CALLING_REFERENCE.format(
        section="Call transcription webhook"
    ),
    "meta/user_initiated_calls_call_connect.json": (
        "Meta, User-initiated calls (updated Nov 13 2025), section 'Call Connect webhook', as copied in "
        "github.com/waindiahub/kusumleads, attached_assets/User-initiated-calls.md at commit "
        "9847b57b017de2751788f9a3a0e4ce89ace1a1a7"
    ),
    **{
        f"pywa/{path.name}": PYWA.format(name=path.name)
        for path in sorted((PUBLISHED / "pywa").glob("*.json"))
    },
}

# Builders that need arguments, and the arguments each is replayed with; the pieces that build no
# whole body. Every other builder in payloads.py is replayed as it is.
BUILDER_ARGUMENTS = {
    "call_status": [((status,), {}) for status in sorted(CALL_STATUSES)],
    "message_status": [((status,), {}) for status in sorted(MESSAGE_STATUSES)],
    "every_type_message": [((name,), {}) for name in payloads.EVERY_TYPE],
    "call_terminate": [((), {}), ((), {"answered": False, "failed": True})],
    "business_call_connect": [((), {}), ((), {"legacy_connection": True})],
    "permission_reply": [((), {}), (("wamid.declined",), {"response": "reject"})],
    "sip_call_created": [((), {}), (("wacid.SIP2",), {"direction": "BUSINESS_INITIATED"})],
    "user_preference": [(("stop", 1765000000), {}), (("resume", 1765000100), {})],
    "preference_system_message": [(("stop", 1765000000), {}), (("resume", 1765000100), {})],
}
NOT_BODIES = {"envelope", "calls_value", "messages_value", "customer_message"}


def module_bodies() -> list[tuple[str, bytes]]:
    """Bodies the test modules put together themselves (out of the builders' pieces, with content
    of their own): the replayed settings that break Meta's rules, a message type no builder makes."""
    from whatsapp.tests.test_webhooks import REPLAYED_CALLING, VALID_CALLING

    carousel = {"type": "carousel_reply", "carousel_reply": {"id": "card_2", "title": "Blue"}}
    bodies = {
        "test_webhooks.REPLAYED_CALLING": payloads.settings_update(
            timestamp="1700000100", calling=REPLAYED_CALLING
        ),
        "test_webhooks.VALID_CALLING": payloads.settings_update(
            timestamp="1700000200", calling=VALID_CALLING
        ),
        "test_webhooks carousel_reply": payloads.customer_message("interactive", carousel, "wamid.new1"),
    }
    return [(name, json.dumps(body).encode()) for name, body in bodies.items()]


def published_bodies() -> list[tuple[str, bytes]]:
    bodies = []
    for path in sorted(PUBLISHED.rglob("*.json")):
        name = str(path.relative_to(PUBLISHED))
        text = path.read_bytes()
        document = json.loads(text)
        if document.get("object") == "whatsapp_business_account":
            bodies.append((name, text))
        else:
            bodies += [(f"{name} {key}", json.dumps(body).encode()) for key, body in document.items()]
    return bodies


def built_bodies() -> list[tuple[str, bytes]]:
    bodies = []
    for name, builder in _builders():
        for args, kwargs in BUILDER_ARGUMENTS.get(name, [((), {})]):
            bodies.append(
                (f"payloads.{name}{args}{kwargs or ''}", json.dumps(builder(*args, **kwargs)).encode())
            )
    return bodies


def _builders():
    return [
        (name, function)
        for name, function in inspect.getmembers(payloads, inspect.isfunction)
        if function.__module__ == payloads.__name__ and not name.startswith("_") and name not in NOT_BODIES
    ]


def items_in(body: dict) -> int:
    """How many items a delivery carries, counted as Meta's shapes say (WHATSAPP_API.md §1.4): each
    entry of a `calls`/`messages` change's lists, or the change itself for other fields."""
    count = 0
    for entry in body["entry"]:
        for change in entry["changes"]:
            value = change["value"]
            lists = [value[key] for key in ("calls", "statuses", "messages") if value.get(key) is not None]
            if change["field"] in ("calls", "messages") and lists:
                count += sum(len(items) if isinstance(items, list) else 1 for items in lists)
            else:
                count += 1
    return count


def test_every_published_body_has_its_source_named():
    files = {str(path.relative_to(PUBLISHED)) for path in PUBLISHED.rglob("*.json")}

    assert files == set(SOURCES)
    assert len(published_bodies()) >= 10


def test_every_builder_is_replayed():
    unreplayable = [
        name
        for name, builder in _builders()
        if name not in BUILDER_ARGUMENTS
        and any(
            parameter.default is inspect.Parameter.empty
            and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            for parameter in inspect.signature(builder).parameters.values()
        )
    ]

    assert unreplayable == []


class _Undone(Exception):
    """Rolls one body's replay back: each body meets the database as it was, so that fixtures reusing
    one message id each reach their handler instead of passing as duplicates of one another."""


def test_replay_stores_every_item_as_an_event_or_a_problem_with_its_reason(client):
    bodies = published_bodies() + built_bodies() + module_bodies()
    for _, body in bodies:  # the numbers the bodies write to, so that handlers do their real work
        for entry in json.loads(body)["entry"]:
            for change in entry["changes"]:
                metadata = change["value"].get("metadata") or {}
                if isinstance(metadata.get("phone_number_id"), str):
                    BusinessNumberFactory(
                        phone_number_id=metadata["phone_number_id"],
                        waba_id=entry["id"],
                        display_phone_number=metadata.get("display_phone_number")
                        or metadata["phone_number_id"],
                    )

    dropped, kinds, rejected, calls = [], set(), [], []
    for name, body in bodies:
        with contextlib.suppress(_Undone), transaction.atomic():
            response = post_webhook(client, body)
            delivery = WebhookDelivery.objects.get()
            keys = {event.idempotency_key for event in parse_delivery(json.loads(body)).events}
            stored = list(WebhookEvent.objects.filter(idempotency_key__in=keys))
            if (
                response.status_code != 200
                or delivery.event_count + delivery.duplicate_count + len(delivery.problems)
                != items_in(json.loads(body))
                or len(stored) != len(keys)
                or any(not problem["reason"] for problem in delivery.problems)
                or any(record.kind not in EVENT_KINDS for record in stored)
                or any(record.status not in ("handled", "unhandled", "rejected") for record in stored)
                or any(record.status == "rejected" and not record.error for record in stored)
            ):
                dropped.append(
                    (name, response.status_code, delivery.problems, [vars(record) for record in stored])
                )
            kinds |= {record.kind for record in stored}
            rejected += [name for record in stored if record.status == "rejected"]
            calls += [(name, call.status, call.end_reason, call.offered_to_id) for call in Call.objects.all()]
            raise _Undone

    assert dropped == []
    assert rejected == ["test_webhooks.REPLAYED_CALLING"]  # kept, with every reason, never applied
    assert {
        "call.sip_created",
        "call.recording_available",
        "call.transcription_available",
        "unsupported",
    } <= kinds
    # Meta's published connect (timestamped 2022) is a call long over: recorded as such. No call the
    # replay brought was rung or is live (fresh connects find no queue and are rejected).
    assert ("meta/user_initiated_calls_call_connect.json", "ended", "too_late", None) in calls
    assert {(status, offered_to) for _, status, _, offered_to in calls} == {(Call.Status.ENDED, None)}
