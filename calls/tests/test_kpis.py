"""The contact centre's KPIs (calls.kpis), the hold they count, the API endpoint and the CSV export.

One day is built by hand, Monday 3 March 2025 (UTC), and every figure is worked out in the comments
from the timestamps below. Two queues, Sales and Support, serve our number; two agents, Ana and Ben,
answer. Times are hh:mm:ss on the 3rd unless another day is named.

Sales (inbound)
  c1  queued 09:00:00, rings Ana 09:00:02, answered 09:00:10 (wait 10), ends 09:05:10 (talk 300, of
      which on hold twice: 20 + 40 = 60); Ana wraps up 09:05:10-09:05:40 (30) and is available.
  c2  queued 10:00:00, rings Ben 10:00:01, Ben declines 10:00:06; rings Ana 10:00:07, answered
      10:00:30 (wait 30), ends 10:04:30 (talk 240); Ana wraps up 10:04:30 and goes away 10:05:00 (30).
  c3  queued 11:00:00, the caller hangs up 11:00:03 (wait 3: a short abandon).
  c4  queued 11:10:00, rings Ben 11:10:01, rings out 11:10:21; the caller hangs up 11:10:45 (wait 45).
  c5  queued 12:00:00, ends no_agent 12:03:00 (wait 180).
  c6  queued 12:30:00, fails 12:30:02 (wait 2).
Support (inbound)
  c7  queued 13:00:00, rings Ben 13:00:01, answered 13:00:05 (wait 5), ends 13:10:05 (talk 600); Ben
      wraps up 13:10:05 and places a call (c8) from wrap-up at 13:10:20 (wrap-up 15).
  c9  started 14:00:00, refused (closed): never queued.
  c10 queued 23:59:50, rings Ana 23:59:52, answered on the 4th 00:00:10 (wait 20: exactly the
      target), ends 00:10:10 (talk 600); Ana wraps up 00:10:10-00:10:40 (30). Spans midnight: the 3rd's.
  c14 queued 23:30:00, still waiting at "now", the 4th 01:00:00 (wait 5400).
No queue (business-initiated)
  c8  Ben, placed 13:10:20, connected 13:10:30, ends 13:12:30 (talk 120); Ben wraps up 13:12:30-13:13:00 (30).
  c12 placed 15:00:00 by the CRM (no agent), unanswered 15:00:30.
  c13 placed 23:50:00, still ringing at "now".
  c15 placed 16:00:00 by the CRM, connected 16:00:10, ends 16:01:10 (talk 60; its charge is unpriced).
The day before (not counted): c11, started the 2nd 23:59:55, rings Ben 23:59:56, answered the 3rd
00:00:05, ends 00:05:05; Ben wraps up 00:05:05-00:05:35.
"""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from djmoney.money import Money

from agents.models import Agent, AgentStatusEvent, QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory, UserFactory
from calls import kpis
from calls.handlers import switch_frame
from calls.models import Call, CallEvent
from calls.services import call_end, call_hold_set
from calls.tests.factories import CallFactory, ContactFactory
from compliance.models import AuditEvent, CallPermission
from integrations.models import ApiKey
from integrations.services import api_key_create
from integrations.tests.conftest import bearer
from messaging.models import Charge
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db

S = Call.Status
A = Agent.Status
DAY = date(2025, 3, 3)
SINCE, UNTIL = kpis.local_day(day=DAY, time_zone="UTC")
NOW = datetime(2025, 3, 4, 1, 0, 0, tzinfo=UTC)


def at(clock: str, *, day: int = 3) -> datetime:
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return datetime(2025, 3, day, hours, minutes, seconds, tzinfo=UTC)


def make_call(floor, queue, **fields) -> Call:
    fields.setdefault("direction", Call.Direction.INBOUND)
    fields.setdefault("queued_at", fields["started_at"] if fields["direction"] == "inbound" else None)
    if fields.get("connected_at") and fields.get("ended_at"):
        fields.setdefault("end_reason", Call.EndReason.COMPLETED)
        fields.setdefault(
            "talk_seconds", round((fields["ended_at"] - fields["connected_at"]).total_seconds())
        )
    fields.setdefault("status", S.ENDED if fields.get("ended_at") else S.QUEUED)
    return CallFactory(business_number=floor.number, queue=queue, **fields)


def call_events(call: Call, *moves) -> None:
    """(from, to, at, agent, detail) moves of a call, as the call's services write them."""
    CallEvent.objects.bulk_create(
        CallEvent(call=call, from_status=before, to_status=after, at=when, agent=agent, detail=detail)
        for before, after, when, agent, detail in moves
    )


def statuses(agent: Agent, *changes) -> None:
    """(at, previous, status) changes of an agent, as agents.services writes them."""
    AgentStatusEvent.objects.bulk_create(
        AgentStatusEvent(agent=agent, changed_at=when, previous_status=before, status=after)
        for when, before, after in changes
    )


def charge(call: Call, *, amount: str | None, seconds: int, currency: str = "GBP") -> Charge:
    return Charge.objects.create(
        kind=Charge.Kind.CALL,
        reference=call.wa_call_id,
        business_number=call.business_number,
        pricing_type=(
            Charge.PricingType.REGULAR
            if call.direction == "outbound"
            else Charge.PricingType.FREE_USER_INITIATED
        ),
        billed_on=call.started_at.date(),
        duration_seconds=seconds,
        amount=None if amount is None else Money(amount, currency),
        amount_currency=currency,
    )


def audit(number, wa_id: str, *events) -> None:
    """(kind, at, from_status, to_status) audit events of the pair's permission."""
    permission = CallPermission.objects.create(business_number=number, contact=ContactFactory(wa_id=wa_id))
    AuditEvent.objects.bulk_create(
        AuditEvent(permission=permission, kind=kind, at=when, from_status=before, to_status=after)
        for kind, when, before, after in events
    )


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """The agents' users need no costly password hash (the default's takes a fifth of a second each)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def floor(db):
    """Our number with its two queues and two agents; another business's number, queue and agent."""
    number = BusinessNumberFactory(label="Acme")
    sales, support = QueueFactory(name="Sales"), QueueFactory(name="Support")
    ana = AgentFactory(display_name="Ana")
    ben = AgentFactory(display_name="Ben")
    for queue in (sales, support):
        queue.business_numbers.add(number)
        QueueMembership.objects.create(queue=queue, agent=ana)
        QueueMembership.objects.create(queue=queue, agent=ben)
    other_number = BusinessNumberFactory(label="Globex")
    other_queue = QueueFactory(name="Globex care")
    other_queue.business_numbers.add(other_number)
    other_agent = AgentFactory(display_name="Gil")
    QueueMembership.objects.create(queue=other_queue, agent=other_agent)
    return SimpleNamespace(
        number=number, sales=sales, support=support, ana=ana, ben=ben, other_number=other_number,
        other_queue=other_queue, other_agent=other_agent,
    )  # fmt: skip


@pytest.fixture
def day(floor):
    """The day in the module's docstring, and a call of the other business that day."""
    ana, ben, sales, support = floor.ana, floor.ben, floor.sales, floor.support
    c = {}
    c[1] = make_call(floor, sales, started_at=at("09:00:00"), agent=ana, connected_at=at("09:00:10"),
                     ended_at=at("09:05:10"), hold_seconds=60)  # fmt: skip
    call_events(
        c[1],
        (S.QUEUED, S.OFFERED, at("09:00:02"), ana, ""),
        (S.OFFERED, S.CONNECTED, at("09:00:10"), ana, ""),
        (S.CONNECTED, S.ENDED, at("09:05:10"), None, ""),
    )
    c[2] = make_call(floor, sales, started_at=at("10:00:00"), agent=ana, connected_at=at("10:00:30"),
                     ended_at=at("10:04:30"))  # fmt: skip
    call_events(
        c[2],
        (S.QUEUED, S.OFFERED, at("10:00:01"), ben, ""),
        (S.OFFERED, S.QUEUED, at("10:00:06"), ben, "declined"),
        (S.QUEUED, S.OFFERED, at("10:00:07"), ana, ""),
        (S.OFFERED, S.CONNECTED, at("10:00:30"), ana, ""),
    )
    c[3] = make_call(floor, sales, started_at=at("11:00:00"), ended_at=at("11:00:03"), end_reason="abandoned")
    c[4] = make_call(floor, sales, started_at=at("11:10:00"), ended_at=at("11:10:45"), end_reason="abandoned")
    call_events(
        c[4],
        (S.QUEUED, S.OFFERED, at("11:10:01"), ben, ""),
        (S.OFFERED, S.QUEUED, at("11:10:21"), ben, "rang out"),
    )
    c[5] = make_call(floor, sales, started_at=at("12:00:00"), ended_at=at("12:03:00"), end_reason="no_agent")
    c[6] = make_call(floor, sales, started_at=at("12:30:00"), ended_at=at("12:30:02"), end_reason="failed")
    c[7] = make_call(floor, support, started_at=at("13:00:00"), agent=ben, connected_at=at("13:00:05"),
                     ended_at=at("13:10:05"))  # fmt: skip
    call_events(
        c[7],
        (S.QUEUED, S.OFFERED, at("13:00:01"), ben, ""),
        (S.OFFERED, S.CONNECTED, at("13:00:05"), ben, ""),
    )
    c[8] = make_call(floor, None, direction="outbound", started_at=at("13:10:20"), agent=ben,
                     connected_at=at("13:10:30"), ended_at=at("13:12:30"))  # fmt: skip
    call_events(
        c[8],
        ("", S.DIALING, at("13:10:20"), ben, ""),
        (S.RINGING, S.CONNECTED, at("13:10:30"), ben, ""),
    )
    c[9] = make_call(floor, support, started_at=at("14:00:00"), queued_at=None, ended_at=at("14:00:00"),
                     end_reason="rejected")  # fmt: skip
    c[10] = make_call(floor, support, started_at=at("23:59:50"), agent=ana,
                      connected_at=at("00:00:10", day=4), ended_at=at("00:10:10", day=4))  # fmt: skip
    call_events(
        c[10],
        (S.QUEUED, S.OFFERED, at("23:59:52"), ana, ""),
        (S.OFFERED, S.CONNECTED, at("00:00:10", day=4), ana, ""),
    )
    c[11] = make_call(floor, sales, started_at=at("23:59:55", day=2), agent=ben, connected_at=at("00:00:05"),
                      ended_at=at("00:05:05"))  # fmt: skip
    call_events(
        c[11],
        (S.QUEUED, S.OFFERED, at("23:59:56", day=2), ben, ""),
        (S.OFFERED, S.CONNECTED, at("00:00:05"), ben, ""),
    )
    c[12] = make_call(floor, None, direction="outbound", started_at=at("15:00:00"), ended_at=at("15:00:30"),
                      end_reason="unanswered")  # fmt: skip
    c[13] = make_call(floor, None, direction="outbound", started_at=at("23:50:00"), status=S.RINGING)
    c[14] = make_call(floor, support, started_at=at("23:30:00"))
    c[15] = make_call(floor, None, direction="outbound", started_at=at("16:00:00"),
                      connected_at=at("16:00:10"), ended_at=at("16:01:10"))  # fmt: skip
    theirs = make_call(floor, floor.other_queue, started_at=at("09:30:00"), agent=floor.other_agent,
                       connected_at=at("09:30:40"), ended_at=at("09:31:40"))  # fmt: skip
    theirs.business_number = floor.other_number
    theirs.save(update_fields=["business_number"])
    call_events(theirs, (S.QUEUED, S.OFFERED, at("09:30:01"), floor.other_agent, ""))

    statuses(
        ana,
        (at("22:00:00", day=2), A.OFFLINE, A.AVAILABLE),
        (at("09:00:02"), A.AVAILABLE, A.RINGING),
        (at("09:00:10"), A.RINGING, A.ON_CALL),
        (at("09:05:10"), A.ON_CALL, A.WRAP_UP),
        (at("09:05:40"), A.WRAP_UP, A.AVAILABLE),
        (at("10:00:07"), A.AVAILABLE, A.RINGING),
        (at("10:00:30"), A.RINGING, A.ON_CALL),
        (at("10:04:30"), A.ON_CALL, A.WRAP_UP),
        (at("10:05:00"), A.WRAP_UP, A.AWAY),  # away during wrap-up: the wrap-up ends here
        (at("10:30:00"), A.AWAY, A.AVAILABLE),
        (at("23:59:52"), A.AVAILABLE, A.RINGING),
        (at("00:00:10", day=4), A.RINGING, A.ON_CALL),
        (at("00:10:10", day=4), A.ON_CALL, A.WRAP_UP),
        (at("00:10:40", day=4), A.WRAP_UP, A.AVAILABLE),
    )
    statuses(
        ben,
        (at("23:00:00", day=2), A.OFFLINE, A.AVAILABLE),
        (at("23:59:56", day=2), A.AVAILABLE, A.RINGING),
        (at("00:00:05"), A.RINGING, A.ON_CALL),
        (at("00:05:05"), A.ON_CALL, A.WRAP_UP),
        (at("00:05:35"), A.WRAP_UP, A.AVAILABLE),
        (at("10:00:01"), A.AVAILABLE, A.RINGING),
        (at("10:00:06"), A.RINGING, A.AVAILABLE),
        (at("11:10:01"), A.AVAILABLE, A.RINGING),
        (at("11:10:21"), A.RINGING, A.AVAILABLE),
        (at("13:00:01"), A.AVAILABLE, A.RINGING),
        (at("13:00:05"), A.RINGING, A.ON_CALL),
        (at("13:10:05"), A.ON_CALL, A.WRAP_UP),
        (at("13:10:20"), A.WRAP_UP, A.ON_CALL),  # places c8 from wrap-up: the wrap-up ends here
        (at("13:12:30"), A.ON_CALL, A.WRAP_UP),
        (at("13:13:00"), A.WRAP_UP, A.AVAILABLE),
        (at("18:00:00"), A.AVAILABLE, A.OFFLINE),
    )

    # Inbound calls are free (priced at 0), c8 costs 0.62, c15 has no rate yet; c11 is the 2nd's.
    for number in (1, 2, 7, 10, 11):
        charge(c[number], amount="0", seconds=c[number].talk_seconds)
    charge(c[8], amount="0.62", seconds=120)
    charge(c[15], amount=None, seconds=60)

    Kind = AuditEvent.Kind
    audit(floor.number, "447700900001", (Kind.REQUEST_SENT, at("09:30:00"), "none", "requested"),
          (Kind.GRANTED, at("09:45:00"), "requested", "temporary"))  # fmt: skip
    audit(floor.number, "447700900002", (Kind.REQUEST_SENT, at("10:00:00"), "none", "requested"),
          (Kind.REJECTED, at("10:10:00"), "requested", "rejected"),  # a first answer of no
          (Kind.GRANTED, at("15:00:00"), "rejected", "temporary"))  # fmt: skip
    audit(floor.number, "447700900003", (Kind.REQUEST_SENT, at("12:00:00", day=2), "none", "requested"),
          (Kind.REQUEST_SENT, at("11:00:00"), "requested", "requested"),  # unanswered before the next
          (Kind.REQUEST_SENT, at("20:00:00"), "requested", "requested"),
          (Kind.GRANTED, at("08:00:00", day=4), "requested", "permanent"))  # fmt: skip
    audit(floor.number, "447700900004", (Kind.REVOKED, at("16:00:00"), "permanent", "revoked"))
    audit(floor.number, "447700900005", (Kind.META_ERROR, at("17:00:00"), "temporary", "revoked"))
    audit(floor.number, "447700900006", (Kind.REJECTED, at("18:00:00"), "permanent", "rejected"))
    audit(floor.number, "447700900007", (Kind.EXPIRED, at("19:00:00"), "temporary", "expired"))
    audit(floor.number, "447700900008", (Kind.META_ERROR, at("19:30:00"), "revoked", "revoked"))
    audit(floor.other_number, "447700900009", (Kind.REQUEST_SENT, at("09:00:00"), "none", "requested"),
          (Kind.REVOKED, at("09:10:00"), "temporary", "revoked"))  # fmt: skip
    return SimpleNamespace(**vars(floor), calls=c, theirs=theirs)


def ours(day) -> kpis.Kpis:
    return kpis.kpis_of_period(since=SINCE, until=UNTIL, business_number_ids=[day.number.pk], now=NOW)


# --- Queues -------------------------------------------------------------------------------


def test_kpis_of_each_queue_and_their_total(day):
    figures = ours(day)

    sales, support, no_queue = figures.queues
    assert [(row.queue_id, row.name) for row in figures.queues] == [
        (day.sales.pk, "Sales"), (day.support.pk, "Support"), (None, "No queue"),
    ]  # fmt: skip
    # Sales: c1..c6 queued; answered c1 (wait 10, within 20) and c2 (30); c3 a short abandon (3 < 5);
    # c4 abandoned (45); c5 no_agent; c6 failed. Service level 1 / (2 + 1 + 1); abandons 1 / 4;
    # ASA (10 + 30) / 2; longest wait c5's 180. Handled c1, c2: talk 300 + 240 = 540 with 60 on hold,
    # wrap-ups 30 + 30; AHT (540 + 60) / 2 = 300, of which talk (540 - 60) / 2, hold 60 / 2, wrap-up 60 / 2.
    assert sales.figures == kpis.CallFigures(
        calls_queued=6, answered=2, answered_within_target=1, abandoned=1, short_abandoned=1, no_agent=1,
        failed=1, waiting=0, rejected=0, wait_seconds=40.0, longest_wait_seconds=180.0, handled=2,
        talk_seconds=540.0, hold_seconds=60.0, wrap_up_seconds=60.0,
    )  # fmt: skip
    assert (sales.figures.service_level, sales.figures.abandonment_rate) == (0.25, 0.25)
    assert (sales.figures.asa_seconds, sales.figures.aht_seconds) == (20.0, 300.0)
    talk, hold, wrap_up = (
        sales.figures.average_talk_seconds, sales.figures.average_hold_seconds,
        sales.figures.average_wrap_up_seconds,
    )  # fmt: skip
    assert (talk, hold, wrap_up) == (240.0, 30.0, 30.0)
    # Support: c7 (wait 5), c10 (wait 20, exactly the target: within) answered, c14 still waiting
    # (23:30 to 01:00: 5400, the longest), c9 refused. Service level 2 / 2; no abandon: 0 / 2;
    # ASA 12.5. Handled c7 (talk 600, wrap-up 15: Ben placed a call) and c10 (600, 30): AHT 1245 / 2.
    assert support.figures == kpis.CallFigures(
        calls_queued=3, answered=2, answered_within_target=2, waiting=1, rejected=1, wait_seconds=25.0,
        longest_wait_seconds=5400.0, handled=2, talk_seconds=1200.0, wrap_up_seconds=45.0,
    )  # fmt: skip
    assert (support.figures.service_level, support.figures.abandonment_rate) == (1.0, 0.0)
    assert (support.figures.asa_seconds, support.figures.aht_seconds) == (12.5, 622.5)
    # No queue: c8 handled (talk 120, wrap-up 30); c15 connected with no agent, so not handled.
    assert no_queue.figures == kpis.CallFigures(handled=1, talk_seconds=120.0, wrap_up_seconds=30.0)
    assert (no_queue.figures.service_level, no_queue.figures.asa_seconds, no_queue.figures.aht_seconds) == (
        None, None, 150.0,
    )  # fmt: skip
    # The day: service level 3 / 6 = 0.5, abandons 1 / 6; ASA 65 / 4; AHT (1860 + 135) / 5 = 399.
    assert figures.total == sales.figures + support.figures + no_queue.figures
    assert (figures.total.service_level, figures.total.abandonment_rate) == (0.5, 1 / 6)
    assert (figures.total.asa_seconds, figures.total.aht_seconds) == (16.25, 399.0)
    assert figures.total.longest_wait_seconds == 5400.0


def test_other_targets_change_the_service_level_and_the_short_abandons(day):
    targets = kpis.Targets(answer_within_s=10, short_abandon_s=2)

    figures = kpis.kpis_of_period(
        since=SINCE, until=UNTIL, queue_id=day.sales.pk, business_number_ids=[day.number.pk], targets=targets,
        now=NOW,
    )  # fmt: skip

    # Sales within 10 s: c1 only (10 is within). c3's 3 s is no longer short: 2 abandons of 5 counted.
    [sales] = figures.queues
    assert (sales.figures.answered_within_target, sales.figures.abandoned, sales.figures.short_abandoned) == (
        1, 2, 0,
    )  # fmt: skip
    assert (sales.figures.service_level, sales.figures.abandonment_rate) == (1 / 5, 2 / 5)


def test_a_call_counts_on_the_day_it_started(day):
    # The 4th holds only c10's last minutes: nothing started then, so nothing counts. The 2nd holds
    # c11 (Sales, answered 10 s after 23:59:55, on the 3rd), handled by Ben with its wrap-up.
    next_day = kpis.kpis_of_period(
        since=UNTIL, until=UNTIL + timedelta(days=1), business_number_ids=[day.number.pk], now=NOW
    )
    day_before = kpis.kpis_of_period(
        since=SINCE - timedelta(days=1), until=SINCE, business_number_ids=[day.number.pk], now=NOW
    )

    assert next_day.total == kpis.CallFigures()
    [sales] = [row for row in day_before.queues if row.queue_id == day.sales.pk]
    assert (sales.figures.answered, sales.figures.wait_seconds, sales.figures.talk_seconds) == (
        1,
        10.0,
        300.0,
    )
    assert sales.figures.wrap_up_seconds == 30.0  # 00:05:05 to 00:05:35 on the 3rd: still c11's


def test_an_empty_period_has_no_figures_rather_than_zeros(floor):
    figures = kpis.kpis_of_period(since=SINCE, until=UNTIL, business_number_ids=[floor.number.pk], now=NOW)

    total = figures.total
    assert (total.service_level, total.abandonment_rate, total.asa_seconds, total.aht_seconds) == (
        None, None, None, None,
    )  # fmt: skip
    assert total.longest_wait_seconds is None
    assert [row.figures.occupancy for row in figures.agents] == [None, None]
    assert figures.agents_total.answer_rate is None
    assert (figures.whatsapp.permission_grant_rate, figures.whatsapp.outbound_answer_rate) == (None, None)
    assert figures.whatsapp.costs == []
    assert kpis.call_figures_row(figures=total)["service_level"] is None


def test_the_kpis_take_a_bounded_number_of_queries(day, django_assert_num_queries):
    with django_assert_num_queries(10):
        kpis.kpis_of_period(since=SINCE, until=UNTIL, business_number_ids=[day.number.pk], now=NOW)
    for hour in range(20):  # twenty more answered calls, each with its offer and its agent's wrap-up
        call = make_call(day, day.sales, started_at=at(f"{hour:02d}:30:00"), agent=day.ana,
                         connected_at=at(f"{hour:02d}:30:05"), ended_at=at(f"{hour:02d}:31:05"))  # fmt: skip
        call_events(call, (S.QUEUED, S.OFFERED, at(f"{hour:02d}:30:01"), day.ana, ""))

    with django_assert_num_queries(10):
        kpis.kpis_of_period(since=SINCE, until=UNTIL, business_number_ids=[day.number.pk], now=NOW)


def test_the_service_level_alone_and_by_hour(day):
    level = kpis.service_level(since=SINCE, until=UNTIL, business_number_ids=[day.number.pk])
    by_hour = kpis.service_level_by_hour(since=SINCE, until=UNTIL, business_number_ids=[day.number.pk])

    assert (level.answered_within_target, level.calls, level.value) == (3, 6, 0.5)
    # 09: c1 within; 10: c2 not; 11: c3 short (left out), c4 abandoned; 12: c5 no_agent, c6 failed
    # (left out); 13: c7 within (c8 is no queue's); 14: c9 refused; 15, 16: business calls; 23: c10
    # within, c14 waiting, c13 business.
    assert by_hour == {
        9: 1.0, 10: 0.0, 11: 0.0, 12: 0.0, 13: 1.0, 14: None, 15: None, 16: None, 23: 1.0,
    }  # fmt: skip


# --- Agents -------------------------------------------------------------------------------


def test_agents_occupancy_offers_and_handle_time(day):
    figures = ours(day)

    ana, ben = figures.agents
    assert [(row.agent_id, row.name) for row in figures.agents] == [(day.ana.pk, "Ana"), (day.ben.pk, "Ben")]
    # Ana on the 3rd: available from the 2nd 22:00 (cut at 00:00) to 09:00:02, 09:05:40-10:00:07,
    # 10:30:00-23:59:52: 32402 + 3267 + 48592 = 84261; ringing 8 + 23 + 8 (23:59:52 to midnight,
    # cut) = 39; on a call 300 + 240 = 540; wrap-up 30 + 30 = 60; away 1500. Signed in 84900, busy 639.
    assert ana.figures.status_seconds == {
        "available": 84261.0, "ringing": 39.0, "on_call": 540.0, "wrap_up": 60.0, "away": 1500.0,
    }  # fmt: skip
    assert (ana.figures.signed_in_seconds, ana.figures.busy_seconds) == (84900.0, 639.0)
    assert ana.figures.occupancy == 639 / 84900
    # Ben: ringing 5 (c11's, from 00:00) + 5 + 20 + 4 = 34; on a call 300 (c11) + 600 + 130 (c8 from
    # placing) = 1030; wrap-up 30 + 15 + 30 = 75; available 35666 + 4195 + 6580 + 17220 = 63661;
    # offline from 18:00: 21600.
    assert ben.figures.status_seconds == {
        "available": 63661.0, "ringing": 34.0, "on_call": 1030.0, "wrap_up": 75.0, "offline": 21600.0,
    }  # fmt: skip
    assert ben.figures.occupancy == 1139 / 64800
    assert figures.agents_total.occupancy == (639 + 1139) / (84900 + 64800)
    # Offers of the 3rd's calls: Ana c1, c2, c10 all accepted; Ben c2 declined, c4 rang out, c7
    # accepted (c11's offer is the 2nd's).
    assert (ana.figures.offers, ana.figures.accepted, ana.figures.missed, ana.figures.answer_rate) == (
        3,
        3,
        0,
        1.0,
    )
    assert (ben.figures.offers, ben.figures.accepted, ben.figures.declined, ben.figures.rang_out) == (
        3,
        1,
        1,
        1,
    )
    assert ben.figures.answer_rate == 1 / 3
    # Handled: Ana c1, c2, c10: (1140 + 90) / 3 = 410; Ben c7, c8: (720 + 45) / 2 = 382.5.
    assert (ana.figures.handled, ana.figures.hold_seconds, ana.figures.aht_seconds) == (3, 60.0, 410.0)
    assert (ben.figures.handled, ben.figures.wrap_up_seconds, ben.figures.aht_seconds) == (2, 45.0, 382.5)


def test_an_agents_time_is_cut_to_the_period(day):
    # 09:00 to 10:00: Ana available 09:00:00-09:00:02 and 09:05:40-10:00:00 (3262), ringing 8, on a
    # call 300, wrap-up 30.
    seconds = kpis.agent_status_seconds(
        agent_ids=[day.ana.pk], since=at("09:00:00"), until=at("10:00:00"), now=NOW
    )

    assert seconds == {day.ana.pk: {"available": 3262.0, "ringing": 8.0, "on_call": 300.0, "wrap_up": 30.0}}


def test_status_still_going_counts_up_to_now(day):
    # Ana is available since 00:10:40 on the 4th; at 01:00 that is 2960 s of the 4th so far.
    seconds = kpis.agent_status_seconds(
        agent_ids=[day.ana.pk], since=UNTIL, until=UNTIL + timedelta(days=1), now=NOW
    )

    assert seconds == {day.ana.pk: {"ringing": 10.0, "on_call": 600.0, "wrap_up": 30.0, "available": 2960.0}}


# --- WhatsApp -----------------------------------------------------------------------------


def test_whatsapp_figures(day):
    figures = ours(day).whatsapp

    # Requests sent on the 3rd: 900001 (granted), 900002 (its first answer was no), 900003 twice (the
    # first unanswered before the second, the second granted on the 4th): 2 of 4. Revocations:
    # 900004 (strikes), 900005 (Meta), 900006 (the customer withdrew); not an expiry nor a
    # revoked-again, nor the other business's.
    assert (figures.permission_requests_sent, figures.permission_requests_granted) == (4, 2)
    assert (figures.permission_grant_rate, figures.permission_revocations) == (0.5, 3)
    # Business calls placed: c8 and c15 connected, c12 unanswered; c13 still ringing is left out.
    assert (figures.outbound_placed, figures.outbound_connected, figures.outbound_answer_rate) == (
        3,
        2,
        2 / 3,
    )
    # Priced: c1, c2, c7, c10 free (300 + 240 + 600 + 600) and c8 (120, 0.62): 0.62 over 31 minutes.
    assert figures.costs == [
        kpis.CallCost(currency="GBP", connected_seconds=1860, amount=Decimal("0.6200"), unpriced_calls=1,
                      unpriced_seconds=60),
    ]  # fmt: skip
    assert figures.costs[0].cost_per_connected_minute == Decimal("0.0200")


def test_a_queues_whatsapp_figures_are_its_numbers(day):
    figures = kpis.kpis_of_period(since=SINCE, until=UNTIL, queue_id=day.other_queue.pk, now=NOW)

    assert (figures.whatsapp.permission_requests_sent, figures.whatsapp.permission_revocations) == (1, 1)
    assert [row.name for row in figures.queues] == ["Globex care"]
    assert [row.name for row in figures.agents] == ["Gil"]


# --- Hold ---------------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """timezone.now() as the test sets it."""
    now = SimpleNamespace(value=at("09:00:00"))
    monkeypatch.setattr("django.utils.timezone.now", lambda: now.value)
    return now


@pytest.fixture
def connected(floor, clock):
    return CallFactory(
        business_number=floor.number, queue=floor.sales, agent=floor.ana, status=S.CONNECTED,
        started_at=at("09:00:00"), queued_at=at("09:00:00"), connected_at=at("09:00:10"),
    )  # fmt: skip


def test_a_call_put_on_hold_twice_counts_both_holds(floor, clock, connected):
    moves = []
    for clock_at, is_on in [("09:01:00", True), ("09:01:05", True), ("09:01:20", False), ("09:01:30", False),
                            ("09:03:00", True), ("09:03:40", False)]:  # fmt: skip
        clock.value = at(clock_at)
        moves.append(call_hold_set(call_id=connected.pk, agent_id=floor.ana.pk, is_on=is_on))

    connected.refresh_from_db()
    assert moves == [True, False, True, False, True, True]  # a switch sent twice counts once
    assert (connected.hold_seconds, connected.held_since) == (20 + 40, None)


def test_a_hold_still_on_when_the_call_ends_is_closed_by_the_end(floor, clock, connected):
    clock.value = at("09:02:00")
    call_hold_set(call_id=connected.pk, agent_id=floor.ana.pk, is_on=True)
    clock.value = at("09:02:45")

    call_end(call_id=connected.pk, reason=Call.EndReason.COMPLETED)

    connected.refresh_from_db()
    assert (connected.hold_seconds, connected.held_since, connected.talk_seconds) == (45, None, 155)
    assert call_hold_set(call_id=connected.pk, agent_id=floor.ana.pk, is_on=True) is False  # ended


def test_only_the_agent_on_the_call_holds_it(floor, clock, connected):
    assert call_hold_set(call_id=connected.pk, agent_id=floor.ben.pk, is_on=True) is False
    connected.refresh_from_db()
    assert connected.held_since is None


def test_the_softphones_hold_switch_is_recorded(floor, clock, connected):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    connected.media_channel = async_to_sync(layer.new_channel)()
    connected.save(update_fields=["media_channel"])

    clock.value = at("09:04:00")
    switch_frame(agent_id=floor.ana.pk, frame={"type": "call.hold", "call_id": connected.pk, "is_on": True})
    clock.value = at("09:04:30")
    switch_frame(agent_id=floor.ana.pk, frame={"type": "call.hold", "call_id": connected.pk, "is_on": False})
    switch_frame(agent_id=floor.ana.pk, frame={"type": "call.mute", "call_id": connected.pk, "is_on": True})

    connected.refresh_from_db()
    assert (connected.hold_seconds, connected.held_since) == (30, None)
    assert async_to_sync(layer.receive)(connected.media_channel) == {
        "type": "call.hold", "call_id": connected.pk, "is_on": True,
    }  # fmt: skip


def test_a_hold_switch_before_the_media_is_ready_records_nothing(floor, clock, connected):
    connected.media_channel = ""
    connected.save(update_fields=["media_channel"])

    with pytest.raises(ValidationError):
        switch_frame(
            agent_id=floor.ana.pk, frame={"type": "call.hold", "call_id": connected.pk, "is_on": True}
        )

    connected.refresh_from_db()
    assert connected.held_since is None


# --- The API ------------------------------------------------------------------------------


def key_of(number, *scopes: str) -> dict:
    _, token = api_key_create(
        name="CRM", scopes=list(scopes or [ApiKey.Scope.READ]), created_by_id=None,
        business_number_ids=[number.pk], rate_limit_per_minute=1000,
    )  # fmt: skip
    return bearer(token)


def kpi_url(**query) -> str:
    query = {"since": SINCE.isoformat(), "until": UNTIL.isoformat(), **query}
    return "/api/v1/kpis/?" + "&".join(f"{name}={value}".replace("+", "%2B") for name, value in query.items())


def test_the_api_gives_our_kpis(client, day):
    answer = client.get(kpi_url(), **key_of(day.number))

    assert answer.status_code == 200
    body = answer.json()
    assert [(row["id"], row["name"]) for row in body["queues"]] == [
        (day.sales.pk, "Sales"), (day.support.pk, "Support"), (None, "No queue"),
    ]  # fmt: skip
    assert body["queues"][0] == {
        "id": day.sales.pk, "name": "Sales", "calls_queued": 6, "answered": 2, "answered_within_target": 1,
        "abandoned": 1, "short_abandoned": 1, "no_agent": 1, "failed": 1, "waiting": 0, "rejected": 0,
        "service_level": 0.25, "abandonment_rate": 0.25, "asa_seconds": 20.0, "longest_wait_seconds": 180.0,
        "handled": 2, "aht_seconds": 300.0, "average_talk_seconds": 240.0, "average_hold_seconds": 30.0,
        "average_wrap_up_seconds": 30.0,
    }  # fmt: skip
    total = body["total"]
    assert (total["service_level"], total["abandonment_rate"], total["aht_seconds"]) == (0.5, 0.1667, 399.0)
    assert body["occupancy"] == round(1778 / 149700, 4)
    assert [(agent["name"], agent["answer_rate"], agent["occupancy"]) for agent in body["agents"]] == [
        ("Ana", 1.0, round(639 / 84900, 4)), ("Ben", 0.3333, round(1139 / 64800, 4)),
    ]  # fmt: skip
    assert body["whatsapp"]["permission_grant_rate"] == 0.5
    assert body["whatsapp"]["costs"] is None  # a `read` key does not see costs
    assert body["targets"] == {"answer_within_s": 20, "goal_percent": 80, "short_abandon_s": 5}


def test_the_api_gives_costs_to_an_admin_key_and_takes_other_targets(client, day):
    answer = client.get(
        kpi_url(queue=day.sales.pk, answer_within_s=30), **key_of(day.number, ApiKey.Scope.ADMIN)
    )

    body = answer.json()
    assert (body["queue"], [row["name"] for row in body["queues"]]) == (day.sales.pk, ["Sales"])
    assert body["total"]["service_level"] == 0.5  # c1 and c2 within 30 s, of 4
    assert body["whatsapp"]["costs"] == [
        {"currency": "GBP", "connected_seconds": 1860, "amount": "0.6200",
         "cost_per_connected_minute": "0.0200", "unpriced_calls": 1, "unpriced_seconds": 60},
    ]  # fmt: skip


def test_a_key_of_another_business_sees_nothing_of_ours(client, day):
    theirs = key_of(day.other_number)

    ours_queue = client.get(kpi_url(queue=day.sales.pk), **theirs)
    ours_number = client.get(kpi_url(number=day.number.pk), **theirs)
    everything = client.get(kpi_url(), **theirs).json()

    assert (ours_queue.status_code, ours_number.status_code) == (404, 404)
    assert [row["name"] for row in everything["queues"]] == ["Globex care"]
    assert [agent["name"] for agent in everything["agents"]] == ["Gil"]
    # Their one call: answered after 40 s; their permission request and revocation only.
    assert (everything["total"]["calls_queued"], everything["total"]["answered_within_target"]) == (1, 0)
    assert (
        everything["whatsapp"]["permission_requests_sent"],
        everything["whatsapp"]["permission_revocations"],
    ) == (1, 1)
    assert everything["whatsapp"]["outbound_placed"] == 0


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"until": SINCE.isoformat()}, 422, "invalid_period"),
        ({"until": (SINCE + timedelta(days=367)).isoformat()}, 422, "invalid_period"),
        ({"since": "yesterday"}, 400, None),
        ({"queue": 0}, 400, None),
        ({"queue": 2**63}, 400, None),
    ],
)
def test_the_api_refuses_a_period_or_a_filter_it_cannot_use(client, floor, query, status, code):
    answer = client.get(kpi_url(**query), **key_of(floor.number))

    assert answer.status_code == status
    if code:
        assert (answer.json()["code"], answer.json()["field"]) == (code, "until")


def test_the_api_needs_a_key_or_a_user(client, floor):
    assert client.get(kpi_url()).status_code in (401, 403)
    assert client.get(kpi_url(), **key_of(floor.number, ApiKey.Scope.CALLS_WRITE)).status_code == 403


# --- The CSV export -----------------------------------------------------------------------


def csv_rows(answer) -> list[list[str]]:
    return list(csv.reader(io.StringIO(answer.content.decode())))


def test_the_csv_has_a_row_per_queue_and_a_total(client, day, clock):
    clock.value = NOW  # c14 has waited 5400 s by then
    client.force_login(UserFactory(is_staff=True))

    answer = client.get("/reports/kpis.csv", {"day": "2025-03-03"})

    assert answer["Content-Type"] == "text/csv; charset=utf-8"
    header, *rows = csv_rows(answer)
    assert header == [
        "queue_id", "queue", "since", "until", "calls_queued", "answered", "answered_within_target",
        "abandoned", "short_abandoned", "no_agent", "failed", "waiting", "rejected", "service_level",
        "abandonment_rate", "asa_seconds", "longest_wait_seconds", "handled", "aht_seconds",
        "average_talk_seconds", "average_hold_seconds", "average_wrap_up_seconds",
    ]  # fmt: skip
    period = ["2025-03-03T00:00:00+00:00", "2025-03-04T00:00:00+00:00"]
    # Staff see every queue: the other business's too (its call: 1 queued, answered after 40 s).
    assert [row[:4] for row in rows] == [
        [str(day.other_queue.pk), "Globex care", *period], [str(day.sales.pk), "Sales", *period],
        [str(day.support.pk), "Support", *period], ["", "No queue", *period], ["", "Total", *period],
    ]  # fmt: skip
    assert rows[1][4:] == ["6", "2", "1", "1", "1", "1", "1", "0", "0", "0.25", "0.25", "20.0", "180.0", "2",
                           "300.0", "240.0", "30.0", "30.0"]  # fmt: skip
    assert rows[3][4:] == ["0", "0", "0", "0", "0", "0", "0", "0", "0", "", "", "", "", "1", "150.0", "120.0",
                           "0.0", "30.0"]  # fmt: skip
    # The total: Sales, Support, no queue and Globex's call (answered after 40 s, handled with no
    # wrap-up recorded): service level 3 / 7, ASA 105 / 5, AHT (1920 + 135) / 6.
    assert rows[4][4:8] == ["10", "5", "3", "1"]
    assert rows[4][13:19] == ["0.4286", "0.1429", "21.0", "5400.0", "6", "342.5"]


def test_the_csv_by_agent(client, day):
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="view_kpis"))
    client.force_login(user)

    answer = client.get("/reports/kpis.csv", {"day": "2025-03-03", "queue": day.sales.pk, "by": "agent"})

    header, *rows = csv_rows(answer)
    assert header == [
        "agent_id", "agent", "since", "until", "signed_in_seconds", "busy_seconds", "available_seconds",
        "ringing_seconds", "on_call_seconds", "wrap_up_seconds", "away_seconds", "occupancy", "offers",
        "accepted", "declined", "rang_out", "answer_rate", "handled", "aht_seconds",
    ]  # fmt: skip
    # Sales alone: Ana's offers c1, c2 and Ben's c2, c4; handled c1, c2 by Ana. Time is the agents'
    # whole day, whatever the queue.
    assert [row[1] for row in rows] == ["Ana", "Ben", "All agents"]
    assert rows[0][4:] == ["84900.0", "639.0", "84261.0", "39.0", "540.0", "60.0", "1500.0", "0.0075",
                           "2", "2", "0", "0", "1.0", "2", "300.0"]  # fmt: skip
    assert rows[1][12:] == ["2", "0", "1", "1", "0.0", "0", ""]
    assert rows[2][11:17] == ["0.0119", "4", "2", "1", "1", "0.5"]


def test_the_csv_is_for_supervisors_only(client, floor):
    client.force_login(UserFactory())

    assert client.get("/reports/kpis.csv").status_code == 403


def test_the_csv_refuses_a_period_it_cannot_use(client, floor):
    client.force_login(UserFactory(is_staff=True))

    answer = client.get(
        "/reports/kpis.csv", {"since": "2025-03-03T10:00:00+00:00", "until": "2025-03-03T09:00:00+00:00"}
    )

    assert (answer.status_code, answer.content.decode()) == (
        400,
        "The period must end after it starts, within 366 days.",
    )
