"""Calling customers from the dashboard, as the permission economy allows it. The agent clicks Call,
is refused with the reasons and asks for permission; the customer grants it, then ignores four calls
in a row: the permission is revoked on both sides and the fifth call is refused before anything
reaches Meta, with the fallback offered. And a call the customer answers: the customer hears that it is
recorded, then the agent; both talk, and both sides are recorded and transcribed."""

import contextlib
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory
from calls.models import Call
from compliance.models import AuditEvent, CallPermission, ConsentRecord
from messaging.models import Contact
from recordings.models import Recording
from recordings.transcription import AGENT, transcribe_recording
from recordings.transcription import CUSTOMER as CUSTOMER_SIDE
from tests.e2e.conftest import (
    MediaProcessThread,
    recording_file,
    serving_app,
    signed_in_available,
    wait_for,
)
from tests.e2e.test_softphone_call import channel_rms
from whatsapp.sandbox.customers import Behaviour
from whatsapp.sandbox.meta import Rules
from whatsapp.sandbox.server import SandboxThread
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.e2e
CUSTOMER = "447700900820"


def strikes() -> int:
    permission = CallPermission.objects.filter(contact__wa_id=CUSTOMER).first()
    return permission.consecutive_unanswered if permission else 0


@contextlib.contextmanager
def outbound_serving(settings, tmp_path: Path, behaviour: Behaviour):
    """Meta (the sandbox, with one customer behaving as told), the web process, a media process
    and an agent of the number's queue, offline. Yields (sandbox thread, sandbox, URL, number, agent)."""
    number = BusinessNumberFactory(phone_number_id="820000000000001", display_phone_number="+44 20 7946 0820")
    queue = QueueFactory(name="Sales")
    queue.business_numbers.add(number)
    agent = AgentFactory(status=Agent.Status.OFFLINE, display_name="Ines Duarte")
    QueueMembership.objects.create(queue=queue, agent=agent)
    token = "e2e-outbound-token"
    sandbox_thread = SandboxThread(
        webhook_url=None,
        app_secret=settings.WHATSAPP_APP_SECRET,
        token=token,
        rules=Rules(business_call_ring_timeout_s=1.0),
        record_dir=tmp_path / "customers",
    )
    with (
        sandbox_thread as sandbox,
        serving_app(WHATSAPP_GRAPH_URL=sandbox.graph_url, WHATSAPP_TOKEN=token) as live_server_url,
        MediaProcessThread(tmp_path / "spool"),
    ):
        sandbox.sender.url = f"{live_server_url}/webhooks/whatsapp/"
        settings.WHATSAPP_GRAPH_URL, settings.WHATSAPP_TOKEN = sandbox.graph_url, token  # the media process's
        sandbox_thread.call(
            sandbox.add_number, phone_number_id=number.phone_number_id, waba_id=number.waba_id,
            display_phone_number=number.display_phone_number,
        )  # fmt: skip
        customer = sandbox_thread.call(
            sandbox.add_customer, wa_id=CUSTOMER, name="Noor Aziz", behaviour=behaviour
        )
        # The customer wrote first: free-form messages (the permission request) may be sent.
        sandbox_thread.call(sandbox.meta.customer_send, customer, number.phone_number_id,
                            {"type": "text", "text": {"body": "Please call me about my order"}})  # fmt: skip
        yield sandbox_thread, sandbox, live_server_url, number, agent


def test_four_ignored_calls_revoke_the_permission_and_the_fifth_is_refused(
    transactional_db, browser, settings_for_media, tmp_path
):
    behaviour = Behaviour(business_call="ignore", permission_reply="accept_temporary")
    serving = outbound_serving(settings_for_media, tmp_path, behaviour)
    with serving as (sandbox_thread, sandbox, live_server_url, number, agent):
        page = signed_in_available(browser, live_server_url, agent)
        dial_error, refusal = page.locator("#dialer [data-role=dial-error]"), page.locator("#dialer .refusal")
        presence_error = page.locator("#presence [data-role=error]")

        # A UK number written as people in the UK write it (the business number is British), on no
        # WhatsApp: the check reads it, and the failed permission request says what that means.
        page.fill("#dial-customer", "07400 123000")
        page.press("#dial-customer", "Tab")
        expect(refusal.locator("[data-role=refusal-title]")).to_have_text(
            "+447400123000 cannot be called now (1 reason):", timeout=10_000
        )
        fallback = page.locator("#dialer [data-action=fallback]")
        fallback.click()
        expect(dial_error).to_have_text(
            "This number cannot receive WhatsApp messages: it may not be on WhatsApp, or the customer's "
            "WhatsApp app may be too old to show this message."
        )
        expect(refusal).to_be_visible()  # still true: the customer cannot be called

        # A number that is not one: said in the dialer, next to it, and the old refusal is gone.
        page.fill("#dial-customer", "+44 12")
        page.press("#dial-customer", "Tab")
        expect(dial_error).to_have_text(
            "Not a phone number: type it as +44 7700 900123, or as it is written in GB with its leading 0."
        )
        expect(refusal).to_be_hidden()
        expect(presence_error).to_be_hidden()

        # No permission yet: refused with the reason (the old error gone), and the fallback asks for it.
        page.fill("#dial-customer", "07700 900820")
        page.click("#dialer button[type=submit]")
        expect(page.locator("#dialer li[data-code=no_permission]")).to_be_visible(timeout=10_000)
        expect(dial_error).to_be_hidden()
        expect(presence_error).to_be_hidden()
        expect(fallback).to_have_text("Ask for permission to call")
        fallback.click()
        expect(page.locator("#dialer [data-role=dial-notice]")).to_contain_text("Permission request sent")
        wait_for(lambda: CallPermission.objects.filter(contact__wa_id=CUSTOMER, status="temporary").exists())

        # Four calls the customer lets ring out: each one a strike; the fourth revokes.
        for attempt in range(1, 5):
            page.click("#dialer button[type=submit]")
            wait_for(lambda attempt=attempt: strikes() == attempt, timeout_s=30)
            expect(page.locator("#in-call [data-role=call-state]")).to_have_text(
                "Call ended: wrap-up", timeout=15_000
            )
        expect(page.locator("#presence [data-role=notices]")).to_contain_text("can no longer be called")

        # The fifth: refused here, before any Graph call, with the fallback that is left.
        page.click("#dialer button[type=submit]")
        expect(page.locator("#dialer li[data-code=permission_revoked]")).to_be_visible(timeout=10_000)
        expect(page.locator("#dialer li[data-code=unanswered_strikes]")).to_be_visible()
        expect(fallback).to_have_text('Send a "Call us" button')
        page.screenshot(path="var/dashboard-call-refused.png")
        sandbox_calls = [
            call for call in sandbox.meta.calls.values() if call.direction == "BUSINESS_INITIATED"
        ]
        sandbox_permission = sandbox_thread.call(sandbox.meta.permission, number.phone_number_id, CUSTOMER)
        page.context.close()

    permission = CallPermission.objects.get(contact__wa_id=CUSTOMER)
    assert (permission.status, permission.consecutive_unanswered) == ("revoked", 4)
    assert (sandbox_permission.status, sandbox_permission.consecutive_unanswered) == ("no_permission", 4)
    assert len(sandbox_calls) == 4
    assert (
        list(Call.objects.filter(direction="outbound").values_list("end_reason", flat=True))
        == ["unanswered"] * 4
    )
    kinds = list(permission.audit_events.order_by("pk").values_list("kind", flat=True))  # as recorded
    assert kinds == [
        AuditEvent.Kind.REQUEST_SENT,
        AuditEvent.Kind.GRANTED,
        *[AuditEvent.Kind.CALL_PLACED, AuditEvent.Kind.STRIKE] * 4,
        AuditEvent.Kind.REVOKED,
    ]


def test_an_answered_call_is_bridged_to_the_agents_browser_and_recorded(
    transactional_db, browser, settings_for_media, tmp_path
):
    # The customer hears that the call is recorded (3.8 s), then the agent at once; it answers the
    # agent's hello in its turn (the agent's microphone: 4.5 s of speech, then a pause).
    behaviour = Behaviour(business_call="answer", answer_after_s=1.0, talk_s=15.0)
    serving = outbound_serving(settings_for_media, tmp_path, behaviour)
    with serving as (sandbox_thread, sandbox, live_server_url, number, agent):
        permission = sandbox_thread.call(sandbox.meta.permission, number.phone_number_id, CUSTOMER)
        sandbox_thread.call(setattr, permission, "status", "permanent")
        # The customer's first message may have made the contact already (its webhook races this).
        contact, _ = Contact.objects.get_or_create(wa_id=CUSTOMER, defaults={"name": "Noor Aziz"})
        CallPermission.objects.update_or_create(
            business_number=number, contact=contact,
            defaults={"status": "permanent", "granted_at": timezone.now(), "owner": agent.user},
        )  # fmt: skip
        page = signed_in_available(browser, live_server_url, agent)

        page.fill("#dial-customer", "+44 7700 900820")
        page.click("#dialer button[type=submit]")
        expect(page.locator("#in-call [data-role=media-state]")).to_have_text(
            "audio connected", timeout=20_000
        )
        expect(page.locator("#in-call [data-role=call-state]")).to_have_text(
            "Call ended: wrap-up", timeout=20_000
        )
        call = Call.objects.get(direction="outbound")
        stored = wait_for(lambda: Recording.objects.filter(call=call).first())
        page.context.close()

    call.refresh_from_db()
    consent = ConsentRecord.objects.get(call=call)
    notice_s = (consent.completed_at - consent.started_at).total_seconds()
    with recording_file(stored) as audio:  # sealed at rest: decrypted as the product reads it
        customer_rms, agent_rms = channel_rms(audio, last_s=14.0 - notice_s)  # once the agent is heard
        segments = transcribe_recording(audio)
    said_by = {
        speaker: " ".join(s.text for s in segments if s.speaker == speaker).lower()
        for speaker in (CUSTOMER_SIDE, AGENT)
    }
    assert (call.status, call.end_reason, call.agent_id) == ("ended", "completed", agent.pk)
    assert call.talk_seconds >= 12
    assert (consent.language, consent.text) == ("en", "This call may be recorded for quality and training.")
    assert notice_s < 5  # heard to its end, and it is short: no greeting, no "please hold"
    assert customer_rms > 0.02 and agent_rms > 0.02
    assert "customer care" in said_by[AGENT]  # what the agent said reached the transcript
    assert "good morning" in said_by[CUSTOMER_SIDE] and "customer care" not in said_by[CUSTOMER_SIDE]
    kinds = list(CallPermission.objects.get().audit_events.values_list("kind", flat=True))
    assert sorted(kinds) == sorted([AuditEvent.Kind.CALL_PLACED, AuditEvent.Kind.CALL_CONNECTED])
