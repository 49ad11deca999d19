"""The capacity plan: Erlang C checked against worked examples, the calls a send brings, the number's
1,000-call cap, the send rate that keeps both, and a campaign's own measured rates."""

import math
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import Agent
from agents.tests.factories import AgentFactory, QueueFactory, QueueMembershipFactory
from calls.models import Call
from calls.tests.factories import CallFactory, ContactFactory
from campaigns.models import Campaign, Recipient
from campaigns.planning import (
    FORMULA,
    Rates,
    agents_needed,
    campaign_plan,
    campaign_plan_apply,
    capacity_plan,
    erlang_b,
    erlang_c,
    measured_rates,
    peak_arrival_rate,
    queue_figures,
)
from messaging.models import RateCard, Template
from whatsapp.tests.factories import BusinessNumberFactory

# --- Erlang C by hand ----------------------------------------------------------------------------


def test_erlang_c_of_2_erlangs_on_3_agents_matches_the_hand_computation():
    """A = 2 erlangs, N = 3 agents, calls of 60 s, answer within 20 s.

    By the textbook formula P_w = (A^N/N! · N/(N-A)) / (sum_{k<N} A^k/k! + A^N/N! · N/(N-A)):
    the terms A^k/k! for k = 0, 1, 2 are 1, 2, 2 (sum 5); A^3/3! · 3/(3-2) = 8/6 · 3 = 4;
    P_w = 4 / (5 + 4) = 4/9 ≈ 0.4444.
    By the recursion: B(1) = 2/3, B(2) = 2·(2/3) / (2 + 4/3) = 2/5, B(3) = 2·(2/5) / (3 + 4/5) = 4/19;
    C = 3·(4/19) / (3 - 2·(15/19)) = (12/19) / (27/19) = 4/9, the same.
    SL(20 s) = 1 - (4/9)·e^(-(3-2)·20/60) = 1 - 0.4444·0.71653 = 0.68154.
    ASA = (4/9)·60 / (3-2) = 26.667 s.
    """
    figures = queue_figures(erlangs=2, agents=3, handle_seconds=60, answer_seconds=20)

    assert erlang_b(erlangs=2, agents=3) == pytest.approx(4 / 19, abs=1e-12)
    assert erlang_c(erlangs=2, agents=3) == pytest.approx(4 / 9, abs=1e-12)
    assert round(figures.waiting_probability, 4) == 0.4444
    assert round(figures.service_level, 5) == 0.68154
    assert round(figures.average_speed_of_answer, 3) == 26.667
    assert figures.is_stable is True


@pytest.mark.parametrize(
    ("agents", "waiting", "service_level", "average_speed_of_answer"),
    [
        (11, 0.6821, 0.3896, 122.78),
        (12, 0.4494, 0.6402, 40.44),
        (13, 0.2853, 0.7956, 17.12),
        (14, 0.1741, 0.8884, 7.84),
    ],
)
def test_erlang_c_of_the_textbook_case_100_calls_in_30_minutes(
    agents, waiting, service_level, average_speed_of_answer
):
    """100 calls in 30 minutes of 180 s each: A = 100 · 180 / 1800 = 10 erlangs; answer within 20 s.

    sum_{k<N} 10^k/k! and the waiting term 10^N/N! · N/(N-10), then P_w = term / (sum + term):
      N = 11: 12,842.31 and 10^11/11! · 11/1 = 2,505.21 · 11 = 27,557.32 → P_w = 27,557.32/40,399.62 = 0.6821
      N = 12: 15,347.52 and 10^12/12! · 12/2 = 2,087.68 · 6 = 12,526.05 → P_w = 12,526.05/27,873.57 = 0.4494
      N = 13: 17,435.19 and 10^13/13! · 13/3 = 1,605.90 · 4.333 = 6,958.92 → P_w = 6,958.92/24,394.11 = 0.2853
      N = 14: 19,041.10 and 10^14/14! · 14/4 = 1,147.07 · 3.5 = 4,014.76 → P_w = 4,014.76/23,055.86 = 0.1741
    SL(20 s) = 1 - P_w · e^(-(N-10)·20/180): for N = 14, 1 - 0.17413 · e^(-0.4444) = 1 - 0.17413 · 0.64118
    = 0.8884; ASA = P_w · 180 / (N-10): for N = 14, 0.17413 · 45 = 7.84 s. The 14-agent figures are those
    published for this example by pyworkforce and R's ErlangC (P_w 0.1741319, SL 0.88835, ASA 7.8359 s).
    """
    figures = queue_figures(erlangs=100 * 180 / 1800, agents=agents, handle_seconds=180, answer_seconds=20)

    assert round(figures.waiting_probability, 4) == waiting
    assert round(figures.service_level, 4) == service_level
    assert round(figures.average_speed_of_answer, 2) == average_speed_of_answer


def test_agents_needed_for_80_percent_in_20_seconds_of_the_textbook_case_is_14():
    """From the table above: 13 agents reach 79.6 %, 14 reach 88.8 %."""
    needed = agents_needed(
        erlangs=10, handle_seconds=180, answer_seconds=20, target_service_level=0.8, most=100
    )

    assert needed == 14


def test_erlang_c_stays_exact_for_a_thousand_agents():
    """10^900 / 900! overflows a float; the recursion never forms it. 900 erlangs on 1,000 agents: few
    wait (the square-root staffing rule puts P_w far below 1 % at 100 agents ≈ 3.3 √900 of spare)."""
    waiting = erlang_c(erlangs=900, agents=1000)

    assert round(waiting, 6) == 0.000593


def test_a_queue_with_as_many_erlangs_as_agents_or_more_never_settles():
    figures = queue_figures(erlangs=3, agents=3, handle_seconds=180, answer_seconds=20)
    more = queue_figures(erlangs=12.5, agents=12, handle_seconds=180, answer_seconds=20)

    assert (figures.waiting_probability, figures.service_level, figures.average_speed_of_answer) == (
        1.0,
        0.0,
        None,
    )
    assert figures.is_stable is False
    assert (more.service_level, more.is_stable) == (0.0, False)


def test_no_calls_wait_for_no_one():
    figures = queue_figures(erlangs=0, agents=0, handle_seconds=180, answer_seconds=20)

    assert (figures.waiting_probability, figures.service_level, figures.average_speed_of_answer) == (
        0.0,
        1.0,
        0.0,
    )


# --- Arrivals and the plan -----------------------------------------------------------------------


def test_the_peak_of_calls_is_the_send_convolved_with_the_tap_delay():
    """100,000 messages at 80/s take T = 1,250 s; 2 % tap after 600 s on average (exponential): at the
    end of the send 80 · 0.02 · (1 - e^(-1250/600)) = 1.6 · (1 - 0.12451) = 1.40078 calls/s. A send that
    lasts many delays reaches r·p itself: 1,000,000 at 1/s (T = 1,000,000 s) → 0.02 calls/s."""
    short = peak_arrival_rate(recipients=100_000, send_rate=80, tap_rate=0.02, tap_delay_seconds=600)
    long = peak_arrival_rate(recipients=1_000_000, send_rate=1, tap_rate=0.02, tap_delay_seconds=600)

    assert round(short, 5) == 1.40078
    assert long == pytest.approx(0.02, abs=1e-12)


def test_a_plan_slows_a_send_the_agents_cannot_keep_up_with():
    """At 80/s, 1.40078 calls/s of 180 s = 252.1 erlangs for 12 agents: unstable. At 2.519 messages/s
    the send takes 39,698 s (11 h 1 min), 0.05038 calls/s (1 - e^(-66.2) ≈ 1) = 9.068 erlangs: 12 agents
    reach 80.02 % in 20 s; at 2.520, 9.072 erlangs reach 79.97 %."""
    plan = capacity_plan(
        recipients=100_000,
        tap_rate=0.02,
        tap_delay_seconds=600,
        call_seconds=180,
        agents=12,
        target_service_level=0.8,
        target_answer_seconds=20,
    )

    assert round(plan.peak_arrival_rate, 5) == 1.40078
    assert round(plan.peak_concurrent_calls, 1) == 252.1
    assert (plan.hits_cap, plan.meets_target, plan.queue.is_stable) == (False, False, False)
    assert plan.recommended_send_rate == 2.519
    assert round(plan.recommended_queue.service_level, 4) == 0.8002
    assert round(plan.recommended_duration_seconds) == 39_698
    assert plan.agents_for_full_rate == 261
    assert plan.lines == [
        "At 80 messages/s, 2 % tapping (expected), 3 min calls: peak 1.4 calls/s → 252 calls at once; "
        "252.1 erlangs of calls for 12 agents: the queue grows without end and no one is answered in time.",
        "To keep under 900 calls at once and 80 % in 20 s with 12 agents, "
        "send at 2.519 messages/s (11 h 1 min).",
        "Sending at the full 80 messages/s would need 261 agents for the target.",
    ]
    slower = queue_figures(erlangs=0.0504 * 180, agents=12, handle_seconds=180, answer_seconds=20)
    assert slower.service_level < 0.8


def test_a_plan_says_when_the_asked_rate_keeps_both():
    """10,000 messages at 2/s (5,000 s), 2 % after 600 s: 0.04 · (1 - e^(-8.33)) = 0.03999 calls/s,
    7.198 erlangs of 180 s calls; 14 agents reach 99 % in 20 s. The fastest rate that keeps 80 % with
    14 agents is the full 80/s (10,000 in 125 s: 1.6 · (1 - e^(-0.2083)) = 0.3017 calls/s would not do),
    so the rate is found between."""
    plan = capacity_plan(
        recipients=10_000,
        send_rate=2,
        tap_rate=0.02,
        tap_delay_seconds=600,
        call_seconds=180,
        agents=14,
        target_service_level=0.8,
        target_answer_seconds=20,
    )

    assert plan.meets_target is True
    assert round(plan.queue.erlangs, 3) == 7.198
    assert plan.lines[0] == (
        "At 2 messages/s, 2 % tapping (expected), 3 min calls: peak 0.04 calls/s → 7 calls at once; "
        "14 agents reach 99 % in 20 s, answering in 0 s on average."
    )
    assert plan.recommended_send_rate > 2
    assert plan.recommended_queue.service_level >= 0.8


def test_5000_calls_at_once_hit_the_cap_and_the_plan_slows_the_send():
    """1,000,000 messages at 80/s, 25 % tap, 250 s calls: 80 · 0.25 = 20 calls/s → 20 · 250 = 5,000
    calls at once (Little's law), five times the cap of 1,000. With agents enough for any queue and no
    service-level target, the cap alone limits: 900 calls at once (90 % of the cap) = 3.6 calls/s
    → 3.6 / 0.25 = 14.4 messages/s (1,000,000 / 14.4 = 69,444 s = 19 h 17 min)."""
    plan = capacity_plan(
        recipients=1_000_000,
        tap_rate=0.25,
        tap_delay_seconds=600,
        call_seconds=250,
        agents=1200,
        target_service_level=0,
        target_answer_seconds=20,
    )

    assert round(plan.peak_concurrent_calls) == 5000
    assert (plan.hits_cap, plan.over_headroom) == (True, True)
    assert plan.recommended_send_rate == 14.4
    assert round(plan.recommended_peak_concurrent_calls) == 900
    assert plan.agents_for_full_rate is None
    assert plan.lines[1:] == [
        "That is over the number's cap of 1,000 calls at once: callers past it are turned away by WhatsApp "
        "with no notice to the business.",
        "To keep under 900 calls at once, send at 14.4 messages/s (19 h 17 min).",
    ]


def test_with_no_agents_on_duty_no_rate_keeps_the_target():
    plan = capacity_plan(
        recipients=1000,
        tap_rate=0.02,
        tap_delay_seconds=600,
        call_seconds=180,
        agents=0,
        target_service_level=0.8,
        target_answer_seconds=20,
    )

    assert (plan.recommended_send_rate, plan.is_feasible) == (None, False)
    assert plan.lines[-1] == "No send rate keeps 80 % in 20 s with 0 agents: put agents on duty first."


def test_a_plan_with_nothing_left_to_send_brings_no_calls():
    plan = capacity_plan(
        recipients=0,
        tap_rate=0.02,
        tap_delay_seconds=600,
        call_seconds=180,
        agents=0,
        target_service_level=0.8,
        target_answer_seconds=20,
    )

    assert (plan.peak_arrival_rate, plan.recommended_send_rate) == (0.0, 80.0)
    assert plan.lines == ["No messages are left to send: the campaign brings no more calls."]


def test_the_wrap_up_keeps_agents_busy_but_not_the_number():
    """0.05 calls/s of 150 s calls and 30 s wrap-up: 0.05 · 180 = 9 erlangs for the agents, but only
    0.05 · 150 = 7.5 calls at once on the number."""
    plan = capacity_plan(
        recipients=1_000_000,
        send_rate=2.5,
        tap_rate=0.02,
        tap_delay_seconds=1,
        call_seconds=150,
        wrap_up_seconds=30,
        agents=12,
        target_service_level=0.8,
        target_answer_seconds=20,
    )

    assert round(plan.queue.erlangs, 6) == 9.0
    assert round(plan.peak_concurrent_calls, 6) == 7.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tap_rate": 1.5}, "tap_rate is a share between 0 and 1."),
        ({"agents": -1}, "agents cannot be negative."),
        ({"call_seconds": 0}, "call_seconds must be more than 0."),
        ({"send_rate": 81}, "send_rate must be more than 0 and at most the number's messaging throughput."),
    ],
)
def test_figures_out_of_range_are_refused(change, message):
    figures = {
        "recipients": 1000, "tap_rate": 0.02, "tap_delay_seconds": 600, "call_seconds": 180, "agents": 3,
        "target_service_level": 0.8, "target_answer_seconds": 20,
    }  # fmt: skip

    with pytest.raises(ValueError, match=message):
        capacity_plan(**{**figures, **change})


# --- Measured rates ------------------------------------------------------------------------------

GUESSED = Rates(tap_rate=0.02, tap_delay_seconds=600, call_seconds=180)


def test_measured_rates_keep_the_guesses_until_enough_customers_were_reached():
    too_few_delivered = measured_rates(
        guessed=GUESSED, delivered=199, tapped=20, calls=15, mean_call_seconds=240, mean_tap_delay_seconds=300
    )
    too_few_calls = measured_rates(
        guessed=GUESSED, delivered=500, tapped=20, calls=9, mean_call_seconds=240, mean_tap_delay_seconds=300
    )

    assert too_few_delivered == GUESSED
    assert too_few_calls == GUESSED


def test_measured_rates_replace_the_guesses_from_200_delivered_and_10_calls():
    rates = measured_rates(
        guessed=GUESSED, delivered=200, tapped=12, calls=10, mean_call_seconds=240, mean_tap_delay_seconds=300
    )

    assert rates == Rates(tap_rate=0.06, tap_delay_seconds=300, call_seconds=240, is_measured=True)


# --- A campaign's plan ---------------------------------------------------------------------------


@pytest.fixture
def number():
    return BusinessNumberFactory()


@pytest.fixture
def campaign(number):
    template = Template.objects.create(
        waba_id=number.waba_id,
        name="diwali_sale",
        language="en",
        category=RateCard.Category.MARKETING,
        status=Template.Status.APPROVED,
    )
    return Campaign.objects.create(
        name="Diwali sale",
        business_number=number,
        template=template,
        expected_tap_rate=Decimal("0.02"),
        expected_call_seconds=180,
        expected_tap_delay_seconds=600,
    )


def listed(campaign, count: int, **fields) -> list[Recipient]:
    start = campaign.recipients.count()
    return Recipient.objects.bulk_create(
        Recipient(
            campaign=campaign, listed_as=f"+9198765{start + n:05d}", wa_id=f"9198765{start + n:05d}", **fields
        )
        for n in range(count)
    )


@pytest.mark.django_db
def test_a_campaigns_plan_counts_the_listed_not_excluded_and_the_agents_signed_in(campaign, number):
    queue = QueueFactory(wrap_up_s=30)
    queue.business_numbers.add(number)
    for status in [Agent.Status.AVAILABLE, Agent.Status.ON_CALL, Agent.Status.WRAP_UP, Agent.Status.AWAY]:
        QueueMembershipFactory(queue=queue, agent=AgentFactory(status=status))
    AgentFactory(status=Agent.Status.AVAILABLE)  # of no queue of the number
    listed(campaign, 900)
    listed(campaign, 100, status=Recipient.Status.EXCLUDED, exclusion=Recipient.Exclusion.NO_OPT_IN)

    plan = campaign_plan(campaign)

    assert plan.inputs.recipients == 900
    assert plan.inputs.agents == 3
    assert (plan.inputs.call_seconds, plan.inputs.wrap_up_seconds) == (180.0, 30)
    assert (plan.inputs.tap_rate, plan.inputs.rates_measured) == (0.02, False)
    assert plan.inputs.concurrent_call_cap == 1000
    assert plan.inputs.send_rate == 80.0


@pytest.mark.django_db
def test_a_campaigns_plan_uses_its_own_rates_once_enough_were_delivered(campaign, number):
    """250 delivered an hour ago (50 of them known only by their `read` status), 25 tapped 5 min after
    delivery (10 %), 10 of their calls ended after 240 s: those replace the guessed 2 %, 10 min and
    180 s. 50 more are still to send."""
    campaign.agents_on_duty = 5
    delivered_at = timezone.now() - timedelta(hours=1)
    reached = listed(campaign, 200, status=Recipient.Status.DELIVERED, delivered_at=delivered_at)
    listed(campaign, 50, status=Recipient.Status.READ, read_at=delivered_at)
    listed(campaign, 50)
    contact = ContactFactory()
    for position, recipient in enumerate(reached[:25]):
        recipient.tapped_call_at = delivered_at + timedelta(minutes=5)
        if position < 10:
            recipient.call = CallFactory(
                business_number=number, contact=contact, status=Call.Status.ENDED, talk_seconds=240
            )
        recipient.save(update_fields=["tapped_call_at", "call"])

    plan = campaign_plan(campaign)

    assert plan.inputs.rates_measured is True
    assert (plan.inputs.tap_rate, plan.inputs.tap_delay_seconds, plan.inputs.call_seconds) == (
        0.1,
        300.0,
        240.0,
    )
    assert (plan.inputs.recipients, plan.inputs.agents) == (50, 5)
    assert "10 % tapping (measured), 4 min calls" in plan.lines[0]


@pytest.mark.django_db
def test_applying_a_plan_keeps_it_and_its_send_rate_on_the_campaign(campaign):
    """5,000 to send, 3 agents, the guesses: at 0.416 messages/s the send takes 12,019 s and brings
    0.416 · 0.02 · (1 - e^(-20.03)) = 0.00832 calls/s, 1.4976 erlangs of 180 s calls: 3 agents reach
    80.03 % in 20 s (at 0.417, 1.5012 erlangs reach 79.9 %)."""
    campaign.agents_on_duty = 3
    campaign.save(update_fields=["agents_on_duty"])
    listed(campaign, 5000)

    plan = campaign_plan_apply(campaign)

    campaign.refresh_from_db()
    assert campaign.send_rate_per_second == Decimal("0.416")
    assert campaign.plan["recommended_send_rate"] == 0.416
    assert round(campaign.plan["recommended_queue"]["service_level"], 4) == 0.8003
    assert campaign.plan["is_feasible"] is True
    assert campaign.plan["formula"] == FORMULA
    assert campaign.plan["inputs"]["agents"] == 3
    assert campaign.plan["lines"] == plan.lines
    assert campaign.plan["queue"]["average_speed_of_answer"] is None
    assert math.isclose(campaign.plan["peak_concurrent_calls"], plan.peak_concurrent_calls)


@pytest.mark.django_db
def test_applying_a_plan_no_rate_keeps_leaves_the_send_rate_empty_and_says_why(campaign):
    campaign.agents_on_duty = 0
    campaign.send_rate_per_second = Decimal("10")
    campaign.save(update_fields=["agents_on_duty", "send_rate_per_second"])
    listed(campaign, 1000)

    campaign_plan_apply(campaign)

    campaign.refresh_from_db()
    assert campaign.send_rate_per_second is None
    assert campaign.plan["is_feasible"] is False
    assert campaign.plan["inputs"]["send_rate"] == 10.0
    assert (
        campaign.plan["lines"][-1]
        == "No send rate keeps 80 % in 20 s with 0 agents: put agents on duty first."
    )
