"""Automatic call distribution: who is rung, accept, decline, ring-out, hang-ups, wrap-up, waits."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from agents.models import Agent, Skill
from calls import routing, services
from calls.models import Call, LiveCallCount
from calls.tasks import send_call_us_button
from calls.tests.factories import CallFactory
from messaging.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_call(queue, number):
    LiveCallCount.objects.create(business_number=number, direction="inbound", live=1)
    return CallFactory(
        queue=queue, business_number=number, status=Call.Status.QUEUED, media_channel="media.test!1"
    )


def queue_it(call: Call) -> Call:
    routing.call_waits(call_id=call.pk)
    call.refresh_from_db()
    return call


def status_of(agent: Agent) -> str:
    agent.refresh_from_db()
    return agent.status


def test_queued_call_rings_the_longest_idle_agent(
    queued_call, make_agent, django_capture_on_commit_callbacks
):
    recent = make_agent(status_changed_at=timezone.now() - timedelta(minutes=1))
    longest = make_agent(status_changed_at=timezone.now() - timedelta(minutes=10))

    with django_capture_on_commit_callbacks() as callbacks:
        call = queue_it(queued_call)

    assert (call.status, call.offered_to, call.offer_count) == ("offered", longest, 1)
    assert (status_of(longest), status_of(recent)) == ("ringing", "available")
    assert len(callbacks) >= 2  # the ring frame and the ring-timeout timer, after commit


def test_lower_tier_rung_only_when_first_tier_busy(queued_call, make_agent):
    second_tier = make_agent(priority=2, status_changed_at=timezone.now() - timedelta(hours=1))
    first_tier = make_agent(priority=1)

    call = queue_it(queued_call)

    assert call.offered_to == first_tier
    assert status_of(second_tier) == "available"


def test_round_robin_rings_the_agent_offered_least_recently(queued_call, queue, make_agent):
    queue.strategy = "round_robin"
    queue.save()
    make_agent(last_offered_at=timezone.now())
    never_offered = make_agent(last_offered_at=None)

    assert queue_it(queued_call).offered_to == never_offered


def test_required_skills_filter_agents(queued_call, queue, make_agent):
    spanish = Skill.objects.create(name="Spanish")
    queue.required_skills.add(spanish)
    make_agent(status_changed_at=timezone.now() - timedelta(hours=1))
    speaker = make_agent()
    speaker.skills.add(spanish)

    assert queue_it(queued_call).offered_to == speaker


def test_no_free_agent_leaves_the_call_queued(queued_call, make_agent):
    make_agent(status=Agent.Status.AWAY)

    assert queue_it(queued_call).status == "queued"


def test_accept_connects_the_call(queued_call, make_agent):
    agent = make_agent()
    call = queue_it(queued_call)

    won = routing.offer_accept(agent_id=agent.pk, call_id=call.pk)

    call.refresh_from_db()
    assert won == call
    assert (call.status, call.agent, call.offered_to) == ("connected", agent, None)
    assert status_of(agent) == "on_call"


def test_accept_by_an_agent_not_rung_loses(queued_call, make_agent):
    rung = make_agent(status_changed_at=timezone.now() - timedelta(hours=1))
    other = make_agent()
    call = queue_it(queued_call)

    assert routing.offer_accept(agent_id=other.pk, call_id=call.pk) is None
    call.refresh_from_db()
    assert (call.status, call.offered_to) == ("offered", rung)
    assert status_of(other) == "available"


def test_decline_offers_the_call_to_the_next_agent(
    queued_call, make_agent, django_capture_on_commit_callbacks
):
    first = make_agent(status_changed_at=timezone.now() - timedelta(hours=1))
    second = make_agent()
    call = queue_it(queued_call)

    with django_capture_on_commit_callbacks(execute=True):
        routing.offer_decline(agent_id=first.pk, call_id=call.pk)

    call.refresh_from_db()
    first.refresh_from_db()
    assert (call.status, call.offered_to, call.offer_count) == ("offered", second, 2)
    assert (first.status, first.missed_offers) == ("available", 1)


def test_second_missed_offer_in_a_row_puts_the_agent_away(queued_call, make_agent):
    agent = make_agent(missed_offers=1)
    call = queue_it(queued_call)
    Call.objects.filter(pk=call.pk).update(offer_expires_at=timezone.now() - timedelta(seconds=1))

    routing.offer_decline(agent_id=agent.pk, call_id=call.pk, has_rung_out=True)

    agent.refresh_from_db()
    assert (agent.status, agent.missed_offers) == ("away", 2)


def test_ring_out_before_expiry_does_nothing(queued_call, make_agent):
    agent = make_agent()
    call = queue_it(queued_call)

    assert routing.offer_decline(agent_id=agent.pk, call_id=call.pk, has_rung_out=True) is None
    assert status_of(agent) == "ringing"


def test_customer_hangs_up_while_ringing_an_agent(queued_call, make_agent, number):
    agent = make_agent()
    call = queue_it(queued_call)

    ended = routing.call_finish(call_id=call.pk, reason=Call.EndReason.ABANDONED)

    call.refresh_from_db()
    assert ended.offered_to_id == agent.pk
    assert (call.status, call.end_reason, call.offered_to) == ("ended", "abandoned", None)
    assert status_of(agent) == "available"
    assert LiveCallCount.objects.get(business_number=number).live == 0


def test_hang_up_decided_on_an_old_offer_frees_the_agent_ringing_now(
    queued_call, make_agent, monkeypatch, django_capture_on_commit_callbacks
):
    """The customer's hang-up reads the call ringing one agent; before its update lands the agent
    declines and the call rings another. The end must free the agent it rings now, not the first
    (the status is "offered" both times: the offer count tells the offers apart)."""
    first = make_agent(status_changed_at=timezone.now() - timedelta(hours=1))
    second = make_agent()
    call = queue_it(queued_call)
    capacity_lock = services._capacity_lock

    def declined_meanwhile(**kwargs):
        monkeypatch.setattr(services, "_capacity_lock", capacity_lock)
        with django_capture_on_commit_callbacks(execute=True):
            routing.offer_decline(agent_id=first.pk, call_id=call.pk)
        assert Call.objects.get(pk=call.pk).offered_to == second
        capacity_lock(**kwargs)

    monkeypatch.setattr(services, "_capacity_lock", declined_meanwhile)  # between call_end's read and move

    ended = routing.call_finish(call_id=call.pk, reason=Call.EndReason.ABANDONED)

    call.refresh_from_db()
    assert (call.status, call.offered_to, ended.offered_to_id) == ("ended", None, second.pk)
    assert (status_of(first), status_of(second)) == ("available", "available")


def test_connected_call_ends_into_wrap_up_then_available(queued_call, make_agent):
    agent = make_agent()
    call = queue_it(queued_call)
    routing.offer_accept(agent_id=agent.pk, call_id=call.pk)

    routing.call_finish(call_id=call.pk, reason=Call.EndReason.COMPLETED)
    in_wrap_up = status_of(agent)
    routing.wrap_up_end(agent_id=agent.pk)

    call.refresh_from_db()
    assert (call.status, call.end_reason) == ("ended", "completed")
    assert call.talk_seconds == 0
    assert (in_wrap_up, status_of(agent)) == ("wrap_up", "available")


def test_agent_going_available_picks_up_the_waiting_call(
    queued_call, make_agent, django_capture_on_commit_callbacks
):
    from agents.services import agent_set_status

    agent = make_agent(status=Agent.Status.AWAY)
    call = queue_it(queued_call)

    with django_capture_on_commit_callbacks(execute=True):
        agent_set_status(agent_id=agent.pk, status=Agent.Status.AVAILABLE)

    call.refresh_from_db()
    assert (call.status, call.offered_to) == ("offered", agent)


def test_presence_cannot_go_available_while_ringing(queued_call, make_agent):
    from django.core.exceptions import ValidationError

    from agents.services import agent_set_status

    agent = make_agent()
    queue_it(queued_call)

    with pytest.raises(ValidationError) as refused:
        agent_set_status(agent_id=agent.pk, status=Agent.Status.AVAILABLE)

    assert refused.value.messages == ["A call is ringing for you: accept or decline it first."]
    assert status_of(agent) == "ringing"


def test_going_away_while_rung_hands_the_ring_to_the_next_agent(
    queued_call, make_agent, django_capture_on_commit_callbacks
):
    from agents.services import agent_set_status

    rung = make_agent(status_changed_at=timezone.now() - timedelta(minutes=10))
    other = make_agent(status_changed_at=timezone.now() - timedelta(minutes=1))
    queue_it(queued_call)

    with django_capture_on_commit_callbacks(execute=True):
        agent_set_status(agent_id=rung.pk, status=Agent.Status.AWAY)

    queued_call.refresh_from_db()
    rung.refresh_from_db()
    went_away = queued_call.events.get(from_status="offered", to_status="queued")
    assert (rung.status, rung.missed_offers) == ("away", 0)
    assert (went_away.agent_id, went_away.detail) == (rung.pk, "went away")
    assert (queued_call.status, queued_call.offered_to_id, status_of(other)) == (
        "offered",
        other.pk,
        "ringing",
    )


def test_an_agent_whose_last_tab_closed_while_rung_goes_offline_and_the_ring_moves_on(
    queued_call, make_agent, django_capture_on_commit_callbacks
):
    """A ring let ring out would make the agent available again with nobody there to hear the next
    one (ghost agents, found in a soak run): the ring is withdrawn and goes to the next agent."""
    from agents.services import agent_offline_if_gone

    rung = make_agent(status_changed_at=timezone.now() - timedelta(minutes=10))
    other = make_agent(status_changed_at=timezone.now() - timedelta(minutes=1))
    queue_it(queued_call)

    with django_capture_on_commit_callbacks(execute=True):
        is_offline = agent_offline_if_gone(agent_id=rung.pk)

    queued_call.refresh_from_db()
    went = queued_call.events.get(from_status="offered", to_status="queued")
    assert (is_offline, status_of(rung)) == (True, "offline")
    assert (went.agent_id, went.detail) == (rung.pk, "went offline")
    rung_next = (queued_call.status, queued_call.offered_to_id, status_of(other))
    assert rung_next == ("offered", other.pk, "ringing")


def test_a_conversation_whose_customer_media_stopped_ends_as_dropped_and_meta_is_told(
    queued_call, make_agent, django_capture_on_commit_callbacks, monkeypatch
):
    from calls import tasks
    from calls.outbound import call_customer_media_ended

    told = []
    monkeypatch.setattr(tasks.terminate_on_meta, "apply_async", lambda **options: told.append(options))
    agent = make_agent()
    call = queue_it(queued_call)
    routing.offer_accept(agent_id=agent.pk, call_id=call.pk)

    with django_capture_on_commit_callbacks(execute=True):
        call_customer_media_ended(call_id=call.pk, is_silent=True)

    call.refresh_from_db()
    assert (call.status, call.end_reason, status_of(agent)) == ("ended", "dropped", "wrap_up")
    assert [options["kwargs"] for options in told] == [{"call_id": call.pk}]


def test_a_customer_whose_media_closed_left_as_before_dropped_is_for_media_that_stopped(
    queued_call, make_agent
):
    from calls.outbound import call_customer_media_ended

    waiting = queue_it(queued_call)
    call_customer_media_ended(call_id=waiting.pk, is_silent=True)
    talking = CallFactory(
        queue=waiting.queue, business_number=waiting.business_number, status=Call.Status.QUEUED
    )
    routing.call_waits(call_id=talking.pk)
    routing.offer_accept(agent_id=make_agent().pk, call_id=talking.pk)
    call_customer_media_ended(call_id=talking.pk)  # its connection closed: a hang-up, most likely

    waiting.refresh_from_db()
    talking.refresh_from_db()
    assert (waiting.status, waiting.end_reason) == ("ended", "abandoned")
    assert (talking.status, talking.end_reason) == ("ended", "abandoned")


def test_presence_cannot_leave_wrap_up_before_the_call_is_filed(queued_call, make_agent):
    from django.core.exceptions import ValidationError

    from agents.services import agent_set_status

    agent = make_agent()
    call = queue_it(queued_call)
    routing.offer_accept(agent_id=agent.pk, call_id=call.pk)
    routing.call_finish(call_id=call.pk, reason=Call.EndReason.COMPLETED)

    with pytest.raises(ValidationError) as refused:
        agent_set_status(agent_id=agent.pk, status=Agent.Status.AWAY)
    routing.call_wrap_up(agent_id=agent.pk, call_id=call.pk, disposition="resolved", notes="")
    filed_then_away = agent_set_status(agent_id=agent.pk, status=Agent.Status.AWAY).status

    assert refused.value.code == "wrap_up_unfiled"
    assert filed_then_away == "away"


@pytest.mark.parametrize(("next_status", "rung"), [("away", False), ("available", True)])
def test_filing_sets_the_next_status_before_any_call_rings(
    next_status, rung, queued_call, queue, number, make_agent, django_capture_on_commit_callbacks
):
    agent = make_agent()
    call = queue_it(queued_call)
    routing.offer_accept(agent_id=agent.pk, call_id=call.pk)
    routing.call_finish(call_id=call.pk, reason=Call.EndReason.COMPLETED)
    LiveCallCount.objects.filter(business_number=number).update(live=1)
    waiting = queue_it(
        CallFactory(
            queue=queue, business_number=number, status=Call.Status.QUEUED, media_channel="media.test!1"
        )
    )

    with django_capture_on_commit_callbacks(execute=True):
        routing.call_wrap_up(
            agent_id=agent.pk,
            call_id=call.pk,
            disposition="resolved",
            notes="Sorted.",
            next_status=next_status,
        )

    waiting.refresh_from_db()
    call.refresh_from_db()
    assert (call.disposition, call.wrap_up_notes) == ("resolved", "Sorted.")
    assert (waiting.offered_to_id == agent.pk, status_of(agent)) == (rung, "ringing" if rung else "away")


def test_the_wrap_up_timer_files_what_the_agent_typed(
    queued_call, make_agent, django_capture_on_commit_callbacks
):
    from agents.presence import wrap_up_draft, wrap_up_draft_save

    agent = make_agent()
    call = queue_it(queued_call)
    routing.offer_accept(agent_id=agent.pk, call_id=call.pk)
    routing.call_finish(call_id=call.pk, reason=Call.EndReason.COMPLETED)
    wrap_up_draft_save(agent_id=agent.pk, call_id=call.pk, disposition="follow_up", notes="Call back at 5.")
    Agent.objects.filter(pk=agent.pk).update(status_changed_at=timezone.now() - timedelta(seconds=31))

    with django_capture_on_commit_callbacks(execute=True):
        is_ended = routing.wrap_up_end(agent_id=agent.pk, is_forced=False)

    call.refresh_from_db()
    assert (is_ended, status_of(agent)) == (True, "available")
    assert (call.disposition, call.wrap_up_notes) == ("follow_up", "Call back at 5.")
    assert wrap_up_draft(agent_id=agent.pk, call_id=call.pk) is None


def test_an_agent_whose_last_tab_closed_in_wrap_up_goes_offline_with_what_they_typed_filed(
    queued_call, make_agent, django_capture_on_commit_callbacks
):
    from agents.presence import wrap_up_draft, wrap_up_draft_save
    from agents.services import agent_offline_if_gone

    agent = make_agent()
    call = queue_it(queued_call)
    routing.offer_accept(agent_id=agent.pk, call_id=call.pk)
    routing.call_finish(call_id=call.pk, reason=Call.EndReason.COMPLETED)
    wrap_up_draft_save(agent_id=agent.pk, call_id=call.pk, disposition="escalated", notes="Two licences.")

    with django_capture_on_commit_callbacks(execute=True):
        is_offline = agent_offline_if_gone(agent_id=agent.pk)
    with django_capture_on_commit_callbacks(execute=True):
        is_ended_by_the_timer = routing.wrap_up_end(agent_id=agent.pk, is_forced=False)

    call.refresh_from_db()
    assert (is_offline, is_ended_by_the_timer, status_of(agent)) == (True, False, "offline")
    assert (call.disposition, call.wrap_up_notes) == ("escalated", "Two licences.")
    assert wrap_up_draft(agent_id=agent.pk, call_id=call.pk) is None


def test_a_wrap_up_draft_is_kept_only_for_the_agents_own_unfiled_call(
    queued_call, make_agent, django_capture_on_commit_callbacks
):
    from django.core.exceptions import ValidationError

    from agents.presence import wrap_up_draft
    from calls.handlers import wrap_up_draft_frame

    agent, other = make_agent(), make_agent()
    call = queue_it(queued_call)
    routing.offer_accept(agent_id=agent.pk, call_id=call.pk)
    routing.call_finish(call_id=call.pk, reason=Call.EndReason.COMPLETED)
    draft = {"call_id": call.pk, "disposition": "", "notes": "Card 4111 1111 1111 1111."}

    with pytest.raises(ValidationError) as refused:
        wrap_up_draft_frame(agent_id=other.pk, frame=draft)
    with django_capture_on_commit_callbacks(execute=True):
        routing.call_wrap_up(agent_id=agent.pk, call_id=call.pk, disposition="resolved", notes="")
    with pytest.raises(ValidationError) as too_late:
        wrap_up_draft_frame(agent_id=agent.pk, frame=draft)

    assert (refused.value.code, too_late.value.code) == ("not_your_call", "not_your_call")
    assert wrap_up_draft(agent_id=other.pk, call_id=call.pk) is None
    assert wrap_up_draft(agent_id=agent.pk, call_id=call.pk) is None


def test_sweep_ends_waits_past_the_maximum_and_stale_offers(queued_call, queue, make_agent, number):
    agent = make_agent()
    LiveCallCount.objects.filter(business_number=number).update(live=2)
    ringing = queue_it(queued_call)
    waiting = queue_it(
        CallFactory(
            queue=queue, business_number=number, status=Call.Status.QUEUED, media_channel="media.test!1"
        )
    )
    Call.objects.filter(pk=ringing.pk).update(offer_expires_at=timezone.now() - timedelta(seconds=1))
    Call.objects.filter(pk=waiting.pk).update(
        queued_at=timezone.now() - timedelta(seconds=queue.max_wait_s + 1)
    )

    counts = routing.sweep()

    waiting.refresh_from_db()
    assert (waiting.status, waiting.end_reason) == ("ended", "no_agent")
    assert counts["waits_ended"] == 1
    assert counts["offers_expired"] == 1
    assert status_of(agent) == "available"
    assert Call.objects.get(pk=ringing.pk).status == "queued"


def test_sweep_ends_calls_of_a_media_process_that_died(
    queued_call, queue, number, settings, monkeypatch, django_capture_on_commit_callbacks
):
    import redis

    from calls.media import HEARTBEAT_KEY_PREFIX

    LiveCallCount.objects.filter(business_number=number).update(live=2)
    orphan = queue_it(queued_call)
    kept = queue_it(
        CallFactory(
            queue=queue, business_number=number, status=Call.Status.QUEUED, media_channel="media.test!1"
        )
    )
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.set(HEARTBEAT_KEY_PREFIX + "media.alive!1", "1", ex=30)
    Call.objects.filter(pk=orphan.pk).update(
        media_channel="media.dead!1", updated_at=timezone.now() - timedelta(minutes=1)
    )
    Call.objects.filter(pk=kept.pk).update(
        media_channel="media.alive!1", updated_at=timezone.now() - timedelta(minutes=1)
    )

    sent = []
    monkeypatch.setattr(send_call_us_button, "apply_async", lambda **options: sent.append(options["kwargs"]))

    with django_capture_on_commit_callbacks(execute=True):
        counts = routing.sweep()

    client.delete(HEARTBEAT_KEY_PREFIX + "media.alive!1")
    orphan.refresh_from_db()
    kept.refresh_from_db()
    assert counts["media_lost"] == 1
    assert (orphan.status, orphan.end_reason, orphan.end_detail) == ("ended", "failed", "media process lost")
    assert kept.status == "queued"
    assert sent == [{"call_id": orphan.pk, "is_dropped": True}]  # the caller is asked to call again


def test_no_call_is_taken_for_lost_while_a_restarted_redis_hears_the_media_processes_again(
    queued_call, monkeypatch
):
    """Redis keeps nothing on disk: just restarted, it holds no media process's heartbeat until each
    beats again (every few seconds). Their calls are not ended for it."""
    call = queue_it(queued_call)
    Call.objects.filter(pk=call.pk).update(
        media_channel="media.alive!1", updated_at=timezone.now() - timedelta(minutes=1)
    )
    monkeypatch.setattr("core.selectors.redis_uptime_s", lambda: 2.0)

    ended_while_restarting = routing.end_calls_of_lost_media_processes()
    monkeypatch.setattr("core.selectors.redis_uptime_s", lambda: 3600.0)
    ended_after = routing.end_calls_of_lost_media_processes()

    assert (ended_while_restarting, ended_after) == (0, 1)


def test_overdue_wait_sends_the_caller_a_call_us_button(
    queued_call, queue, settings, django_capture_on_commit_callbacks
):
    from whatsapp.sandbox.server import SandboxThread

    waiting = queue_it(queued_call)
    Call.objects.filter(pk=waiting.pk).update(queued_at=timezone.now() - timedelta(seconds=queue.max_wait_s))
    with SandboxThread(webhook_url=None, app_secret="s", token="t") as sandbox:
        settings.WHATSAPP_GRAPH_URL, settings.WHATSAPP_TOKEN = sandbox.graph_url, "t"
        sandbox.meta.add_number(
            phone_number_id=waiting.business_number.phone_number_id,
            waba_id=waiting.business_number.waba_id,
            display_phone_number=waiting.business_number.display_phone_number,
        )
        customer = sandbox.add_customer(wa_id=waiting.contact.wa_id, name=waiting.contact.name)
        sandbox.meta.windows[(waiting.business_number.phone_number_id, customer.wa_id)] = sandbox.meta.now()

        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            routing.call_wait_overdue(call_id=waiting.pk)
        message_id = send_call_us_button(call_id=waiting.pk)

    waiting.refresh_from_db()
    [button] = [message for message in customer.inbox if message.message_id == message_id]
    assert (waiting.status, waiting.end_reason) == ("ended", "no_agent")
    assert button.body["interactive"]["action"]["parameters"]["payload"] == f"callback:{waiting.pk}"
    assert len(callbacks) >= 2  # Meta's terminate and the call-us message, after commit
    in_thread = Message.objects.get(wa_message_id=message_id)  # the customer's thread shows it
    assert (in_thread.contact_id, in_thread.message_type, in_thread.status) == (
        waiting.contact_id,
        "interactive",
        "sent",
    )


def test_an_old_wrap_up_timer_does_not_cut_a_new_wrap_up_short(queued_call, make_agent):
    agent = make_agent()
    call = queue_it(queued_call)
    routing.offer_accept(agent_id=agent.pk, call_id=call.pk)
    routing.call_finish(call_id=call.pk, reason=Call.EndReason.COMPLETED)

    is_ended_early = routing.wrap_up_end(agent_id=agent.pk, is_forced=False)
    Agent.objects.filter(pk=agent.pk).update(status_changed_at=timezone.now() - timedelta(seconds=31))
    is_ended_on_time = routing.wrap_up_end(agent_id=agent.pk, is_forced=False)

    assert (is_ended_early, is_ended_on_time) == (False, True)
    assert status_of(agent) == "available"


def test_an_early_wait_timer_does_not_end_the_call(queued_call):
    call = queue_it(queued_call)

    assert routing.call_wait_overdue(call_id=call.pk) is None
    assert Call.objects.get(pk=call.pk).status == "queued"


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite cannot lock rows: a lost claim is undone"
)
def test_a_round_whose_claim_on_locked_rows_loses_raises_and_changes_nothing(
    queued_call, make_agent, monkeypatch
):
    # On PostgreSQL a round locks the agents and calls it claims: losing a claim is a bug, and
    # the round's changes (no savepoint of its own) are undone with its caller's transaction.
    agent = make_agent()
    monkeypatch.setattr(routing, "calls_offer_many", lambda **kwargs: False)

    with pytest.raises(routing.RoundLost), transaction.atomic():
        routing.route_queue(queue_id=queued_call.queue_id)

    assert status_of(agent) == Agent.Status.AVAILABLE
    queued_call.refresh_from_db()
    assert queued_call.status == Call.Status.QUEUED


@pytest.mark.parametrize(
    ("rung", "notes"), [("who took it", "Card [card], mail [email]"), ("a colleague", "")]
)
def test_the_ring_shows_the_callers_last_notes_as_the_agent_rung_may_read_them(
    rung, notes, queued_call, queue, number, make_agent, django_capture_on_commit_callbacks, monkeypatch
):
    now = timezone.now()
    took_it = make_agent(status_changed_at=now - timedelta(minutes=10 if rung == "who took it" else 1))
    colleague = make_agent(status_changed_at=now - timedelta(minutes=10 if rung == "a colleague" else 1))
    CallFactory(
        contact=queued_call.contact, business_number=number, agent=took_it, status=Call.Status.ENDED,
        end_reason=Call.EndReason.COMPLETED, ended_at=now - timedelta(days=1),
        wrap_up_notes="Card 4111 1111 1111 1111, mail jo@example.com",
    )  # fmt: skip
    sent = []
    monkeypatch.setattr(
        "core.realtime._post", lambda is_group, target, message, level: sent.append((target, message))
    )

    with django_capture_on_commit_callbacks(execute=True):
        queue_it(queued_call)

    agent = took_it if rung == "who took it" else colleague
    frames = [
        frame
        for target, message in sent
        if target == f"agent.{agent.pk}"
        for frame in message.get("frames", [message])
        if frame["type"] == "call.offered"
    ]
    assert [frame["last_call"]["notes"] for frame in frames] == [notes]
