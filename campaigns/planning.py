"""The capacity plan of a campaign: the calls it will bring, whether they fit the number's 1,000-call cap
(WHATSAPP_API.md §5.1) and the agents on duty, and the send rate that keeps both (never above the
number's messaging throughput, §10.1).

The queue is the Erlang C model (M/M/N: Poisson arrivals, exponential handling times, N agents, callers
who wait as long as it takes): the standard formula of teletraffic engineering, from A. K. Erlang,
"Solution of some problems in the theory of probabilities of significance in automatic telephone
exchanges" (1917), and the usual basis of call-centre staffing. It is written out here rather than taken
from a package: those on PyPI that offer it bring far more than these few lines of arithmetic need
(pyworkforce pulls in Google's OR-Tools for its scheduling parts; ErlangCCmath asks for a vendor's user
id), and the project adds no package for it. The example pyworkforce and R's ErlangC publish
(100 calls in 30 min, 180 s calls, 14 agents → P_w 0.1741, 88.8 % in 20 s, ASA 7.84 s) is one of the
tests' worked examples.

Arrivals: the send spreads the messages evenly over its duration, and each customer who taps the call
button does so after an exponential delay from delivery (mean ``tap_delay_seconds``). The call arrival
rate is the send convolved with that delay: ``r·p·(1 - e^(-t/D))`` while sending, falling off after, so
its peak is at the end of the send. The queue at that peak is taken as if it lasted (the usual
peak-interval staffing rule): a cautious figure, since arrivals are at their peak only around the end
of the send.
"""

import math
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Avg, Count, F, Q
from django.utils import timezone

from agents.models import Agent
from agents.selectors import queue_for_number
from campaigns.models import Campaign, Recipient

DEFAULT_MESSAGES_PER_SECOND = 80.0  # a business number's default messaging throughput (§10.1)
DEFAULT_CONCURRENT_CALL_CAP = 1000  # live calls per business number (§5.1)
# The share of the cap a plan fills at most: random arrivals swing around their mean (a Poisson count of
# 900 has a standard deviation of 30), and calls waiting for an agent are live calls at Meta too.
CAP_HEADROOM = 0.9
# Measured rates replace the operator's guesses once this many of the campaign's messages were
# delivered and this many of its calls ended (fewer are noise).
MEASURED_MIN_DELIVERED = 200
MEASURED_MIN_CALLS = 10
SEND_RATE_PLACES = 3  # the campaign keeps its send rate to a thousandth of a message per second
FORMULA = (
    "Erlang C (M/M/N queue; A. K. Erlang 1917): P_w from the Erlang B recursion, "
    "C = N·B / (N - A·(1 - B)); SL(t) = 1 - P_w·e^(-(N - A)·t / AHT); ASA = P_w·AHT / (N - A). "
    "Arrivals: the send convolved with an exponential tap delay; concurrent calls by Little's law."
)


# --- Erlang C ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFigures:
    """What a queue of ``agents`` reaches under ``erlangs`` of offered traffic."""

    erlangs: float
    agents: int
    waiting_probability: float  # P_w: the share of callers who wait at all
    service_level: float  # the share answered within the target answer time
    average_speed_of_answer: float | None  # seconds; None when the queue never settles
    is_stable: bool  # fewer erlangs than agents: otherwise the queue grows without end


def erlang_b(*, erlangs: float, agents: int) -> float:
    """Erlang B blocking probability by its recursion B(0) = 1, B(k) = A·B(k-1) / (k + A·B(k-1)), which
    never forms A^N or N! and so stays exact for thousands of agents."""
    if erlangs < 0 or agents < 0:
        raise ValueError("Traffic and agents cannot be negative.")
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = erlangs * blocking / (k + erlangs * blocking)
    return blocking


def erlang_c(*, erlangs: float, agents: int) -> float:
    """Erlang C: the probability that a caller waits, C = N·B / (N - A·(1 - B)) with B = Erlang B; 1 when
    the agents cannot keep up (A ≥ N)."""
    if erlangs <= 0:
        return 0.0
    if erlangs >= agents:
        return 1.0
    blocking = erlang_b(erlangs=erlangs, agents=agents)
    return agents * blocking / (agents - erlangs * (1 - blocking))


def queue_figures(
    *, erlangs: float, agents: int, handle_seconds: float, answer_seconds: float
) -> QueueFigures:
    """Erlang C's figures for a queue: P_w, the service level SL(t) = 1 - P_w·e^(-(N - A)·t / AHT) for
    the answer time t, and the average speed of answer ASA = P_w·AHT / (N - A). An unstable queue
    (A ≥ N) answers no one in time: SL 0, no ASA."""
    if handle_seconds <= 0:
        raise ValueError("A call lasts more than 0 seconds.")
    if erlangs > 0 and erlangs >= agents:
        return QueueFigures(erlangs, agents, 1.0, 0.0, None, False)
    waiting = erlang_c(erlangs=erlangs, agents=agents)
    if waiting == 0:
        return QueueFigures(erlangs, agents, 0.0, 1.0, 0.0, True)
    spare = agents - erlangs
    return QueueFigures(
        erlangs=erlangs,
        agents=agents,
        waiting_probability=waiting,
        service_level=1 - waiting * math.exp(-spare * answer_seconds / handle_seconds),
        average_speed_of_answer=waiting * handle_seconds / spare,
        is_stable=True,
    )


def agents_needed(
    *, erlangs: float, handle_seconds: float, answer_seconds: float, target_service_level: float, most: int
) -> int | None:
    """The fewest agents whose queue reaches the target service level (None: more than ``most``)."""
    agents = max(1, math.floor(erlangs) + 1)
    while agents <= most:
        figures = queue_figures(
            erlangs=erlangs, agents=agents, handle_seconds=handle_seconds, answer_seconds=answer_seconds
        )
        if figures.service_level >= target_service_level:
            return agents
        agents += 1
    return None


# --- Arrivals ------------------------------------------------------------------------------------


def peak_arrival_rate(
    *, recipients: int, send_rate: float, tap_rate: float, tap_delay_seconds: float
) -> float:
    """Calls per second at the end of the send, when they peak: ``r·p·(1 - e^(-T/D))`` for a send of
    ``recipients`` messages at ``send_rate`` a second (T = recipients / r), a share ``tap_rate`` tapping
    after an exponential delay of mean D. It grows with the send rate, towards ``r·p``."""
    if recipients <= 0 or send_rate <= 0 or tap_rate <= 0:
        return 0.0
    duration = recipients / send_rate
    return send_rate * tap_rate * -math.expm1(-duration / tap_delay_seconds)


# --- The plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanInputs:
    recipients: int  # messages still to send
    send_rate: float  # the send rate the figures are for (messages a second)
    tap_rate: float  # share of recipients who tap the call button
    tap_delay_seconds: float  # mean time from delivery to the tap
    call_seconds: float  # mean talk time of a call (what the concurrent-call cap counts)
    wrap_up_seconds: float  # after-call work (the agent is busy, the call is over)
    agents: int
    target_service_level: float  # 0: no target, only the cap limits the send
    target_answer_seconds: float
    concurrent_call_cap: int
    messages_per_second: float  # the number's messaging throughput
    rates_measured: bool = False  # tap rate and call length are the campaign's own, not guesses


@dataclass(frozen=True)
class CapacityPlan:
    """The figures at the send rate asked for, and the send rate that keeps both the cap (with
    headroom) and the target service level: ``recommended_send_rate`` is None when no rate does (no
    agents); ``lines`` say it in words."""

    inputs: PlanInputs
    peak_arrival_rate: float  # calls a second
    peak_concurrent_calls: float  # Little's law: arrivals x talk time
    hits_cap: bool  # over the number's cap itself
    over_headroom: bool  # over the share of the cap a plan fills at most
    queue: QueueFigures
    meets_target: bool
    recommended_send_rate: float | None
    recommended_duration_seconds: float | None
    recommended_peak_concurrent_calls: float | None
    recommended_queue: QueueFigures | None
    # Agents the target needs at the number's full throughput (None when the cap does not allow it).
    agents_for_full_rate: int | None
    lines: list[str] = field(default_factory=list)
    formula: str = FORMULA

    @property
    def is_feasible(self) -> bool:
        return self.recommended_send_rate is not None

    def as_json(self) -> dict:
        """The plan as the campaign keeps it (its ``plan`` field)."""
        return {**asdict(self), "is_feasible": self.is_feasible}


def capacity_plan(
    *,
    recipients: int,
    tap_rate: float,
    tap_delay_seconds: float,
    call_seconds: float,
    agents: int,
    target_service_level: float,
    target_answer_seconds: float,
    send_rate: float | None = None,
    wrap_up_seconds: float = 0,
    concurrent_call_cap: int = DEFAULT_CONCURRENT_CALL_CAP,
    messages_per_second: float = DEFAULT_MESSAGES_PER_SECOND,
    rates_measured: bool = False,
) -> CapacityPlan:
    """Plan a send of ``recipients`` messages: the calls it brings at ``send_rate`` (default: the number's
    full throughput), whether they fit the number's concurrent-call cap and reach the target service
    level with the agents, and the highest send rate (to a thousandth, at most the throughput) that
    keeps the peak under ``CAP_HEADROOM`` of the cap and the service level at the target.

    Agents are busy for the call and its wrap-up (AHT = call + wrap-up seconds); the cap counts calls
    only (arrivals x call seconds). Raises ValueError for figures outside their range."""
    _check(
        recipients=recipients, tap_rate=tap_rate, tap_delay_seconds=tap_delay_seconds,
        call_seconds=call_seconds, agents=agents, target_service_level=target_service_level,
        target_answer_seconds=target_answer_seconds, wrap_up_seconds=wrap_up_seconds,
        concurrent_call_cap=concurrent_call_cap, messages_per_second=messages_per_second, send_rate=send_rate,
    )  # fmt: skip
    send_rate = messages_per_second if send_rate is None else send_rate
    inputs = PlanInputs(
        recipients=recipients, send_rate=send_rate, tap_rate=tap_rate, tap_delay_seconds=tap_delay_seconds,
        call_seconds=call_seconds, wrap_up_seconds=wrap_up_seconds, agents=agents,
        target_service_level=target_service_level, target_answer_seconds=target_answer_seconds,
        concurrent_call_cap=concurrent_call_cap, messages_per_second=messages_per_second,
        rates_measured=rates_measured,
    )  # fmt: skip
    at_rate = _figures(inputs, send_rate)
    recommended = _highest_rate(inputs)
    at_best = _figures(inputs, recommended) if recommended is not None else None
    full = _figures(inputs, messages_per_second)
    handle = call_seconds + wrap_up_seconds
    needed = None  # only asked when the cap lets the full throughput through
    if full.concurrent <= concurrent_call_cap * CAP_HEADROOM:
        needed = agents_needed(
            erlangs=full.erlangs, handle_seconds=handle, answer_seconds=target_answer_seconds,
            target_service_level=target_service_level, most=max(concurrent_call_cap, agents) * 10,
        )  # fmt: skip
    plan = CapacityPlan(
        inputs=inputs,
        peak_arrival_rate=at_rate.arrivals,
        peak_concurrent_calls=at_rate.concurrent,
        hits_cap=at_rate.concurrent > concurrent_call_cap,
        over_headroom=at_rate.concurrent > concurrent_call_cap * CAP_HEADROOM,
        queue=at_rate.queue,
        meets_target=at_rate.is_kept,
        recommended_send_rate=recommended,
        recommended_duration_seconds=recipients / recommended if recommended else None,
        recommended_peak_concurrent_calls=at_best.concurrent if at_best else None,
        recommended_queue=at_best.queue if at_best else None,
        agents_for_full_rate=needed,
    )
    return CapacityPlan(**{**plan.__dict__, "lines": _lines(plan)})


@dataclass(frozen=True)
class _AtRate:
    arrivals: float
    concurrent: float
    erlangs: float
    queue: QueueFigures
    is_kept: bool  # under the cap's headroom and at the target service level


def _figures(inputs: PlanInputs, send_rate: float) -> _AtRate:
    arrivals = peak_arrival_rate(
        recipients=inputs.recipients, send_rate=send_rate, tap_rate=inputs.tap_rate,
        tap_delay_seconds=inputs.tap_delay_seconds,
    )  # fmt: skip
    handle = inputs.call_seconds + inputs.wrap_up_seconds
    erlangs = arrivals * handle
    queue = queue_figures(
        erlangs=erlangs,
        agents=inputs.agents,
        handle_seconds=handle,
        answer_seconds=inputs.target_answer_seconds,
    )
    concurrent = arrivals * inputs.call_seconds
    is_kept = concurrent <= inputs.concurrent_call_cap * CAP_HEADROOM and (
        queue.service_level >= inputs.target_service_level if arrivals else True
    )
    return _AtRate(arrivals, concurrent, erlangs, queue, is_kept)


def _highest_rate(inputs: PlanInputs) -> float | None:
    """The highest send rate, to a thousandth, that keeps the cap's headroom and the target: the peak
    grows with the send rate and the service level falls with the peak, so a bisection finds it."""
    step = 10**-SEND_RATE_PLACES
    top = math.floor(inputs.messages_per_second / step) * step
    if _figures(inputs, top).is_kept:
        return round(top, SEND_RATE_PLACES)
    if not _figures(inputs, step).is_kept:
        return None
    low, high = 1, round(top / step)  # in thousandths: low is kept, high is not
    while high - low > 1:
        middle = (low + high) // 2
        if _figures(inputs, middle * step).is_kept:
            low = middle
        else:
            high = middle
    return round(low * step, SEND_RATE_PLACES)


def _check(**figures) -> None:
    problems = []
    for name in ("recipients", "agents", "wrap_up_seconds"):
        if figures[name] < 0:
            problems.append(f"{name} cannot be negative")
    if not 0 <= figures["tap_rate"] <= 1:
        problems.append("tap_rate is a share between 0 and 1")
    if not 0 <= figures["target_service_level"] <= 1:
        problems.append("target_service_level is a share between 0 and 1")
    for name in ("tap_delay_seconds", "call_seconds", "target_answer_seconds", "messages_per_second"):
        if figures[name] <= 0:
            problems.append(f"{name} must be more than 0")
    if figures["concurrent_call_cap"] < 1:
        problems.append("concurrent_call_cap must be at least 1")
    send_rate = figures["send_rate"]
    if send_rate is not None and not 0 < send_rate <= figures["messages_per_second"]:
        problems.append("send_rate must be more than 0 and at most the number's messaging throughput")
    if problems:
        raise ValueError("; ".join(problems) + ".")


# --- Words ---------------------------------------------------------------------------------------


def _lines(plan: CapacityPlan) -> list[str]:
    inputs = plan.inputs
    if not inputs.recipients:
        return ["No messages are left to send: the campaign brings no more calls."]
    guesses = "measured" if inputs.rates_measured else "expected"
    situation = (
        f"At {_rate(inputs.send_rate)} messages/s, {_percent(inputs.tap_rate)} tapping ({guesses}), "
        f"{_duration(inputs.call_seconds)} calls: peak {_figure(plan.peak_arrival_rate)} calls/s → "
        f"{plan.peak_concurrent_calls:,.0f} calls at once"
    )
    lines = [f"{situation}; {_queue_words(plan.queue, inputs)}."]
    cap = inputs.concurrent_call_cap
    if plan.hits_cap:
        lines.append(
            f"That is over the number's cap of {cap:,} calls at once: callers past it are turned away by "
            "WhatsApp with no notice to the business."
        )
    elif plan.over_headroom:
        lines.append(
            f"That is within {100 - CAP_HEADROOM * 100:.0f} % of the number's cap of {cap:,} calls at once."
        )
    if plan.recommended_send_rate is None:
        lines.append(
            f"No send rate keeps {_percent(inputs.target_service_level)} in "
            f"{inputs.target_answer_seconds:g} s with {_agents(inputs.agents)}: put agents on duty first."
        )
        return lines
    rate = plan.recommended_send_rate
    duration = _duration(plan.recommended_duration_seconds or 0)
    if math.isclose(rate, inputs.send_rate) and plan.meets_target:
        lines.append(f"That rate keeps both the cap and the target: the send takes {duration}.")
        return lines
    keeps = [f"under {cap * CAP_HEADROOM:,.0f} calls at once"]
    if inputs.target_service_level:
        keeps.append(
            f"{_percent(inputs.target_service_level)} in {inputs.target_answer_seconds:g} s "
            f"with {_agents(inputs.agents)}"
        )
    fastest = " (the number's full throughput)" if math.isclose(rate, inputs.messages_per_second) else ""
    lines.append(f"To keep {' and '.join(keeps)}, send at {_rate(rate)} messages/s{fastest} ({duration}).")
    if plan.agents_for_full_rate and plan.agents_for_full_rate > inputs.agents and not fastest:
        lines.append(
            f"Sending at the full {_rate(inputs.messages_per_second)} messages/s would need "
            f"{_agents(plan.agents_for_full_rate)} for the target."
        )
    return lines


def _queue_words(queue: QueueFigures, inputs: PlanInputs) -> str:
    agents = _agents(inputs.agents).capitalize()
    if not queue.is_stable:
        return (
            f"{queue.erlangs:,.1f} erlangs of calls for {_agents(inputs.agents)}: the queue grows "
            "without end and no one is answered in time"
        )
    reach = f"{agents} reach {_percent(queue.service_level)} in {inputs.target_answer_seconds:g} s"
    return f"{reach}, answering in {queue.average_speed_of_answer:,.0f} s on average"


def _figure(value: float) -> str:
    """Two significant figures below 10 (0.033, 4.1), one decimal above (12.5)."""
    return f"{value:.2g}" if value < 10 else f"{value:,.1f}"


def _agents(count: int) -> str:
    return f"{count:,} agent{'' if count == 1 else 's'}"


def _percent(share: float) -> str:
    percent = share * 100
    return f"{percent:.0f} %" if percent >= 10 or percent == round(percent) else f"{percent:.1f} %"


def _rate(rate: float) -> str:
    return f"{rate:,.3f}".rstrip("0").rstrip(".")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min" if not rest or minutes >= 10 else f"{minutes} min {rest} s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    text = f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{days} d {text}" if days else text


# --- Measured rates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    """What a plan assumes of the customers: the share who tap the call button, how long after delivery,
    and how long their calls last; ``is_measured`` when they are the campaign's own figures."""

    tap_rate: float
    tap_delay_seconds: float
    call_seconds: float
    is_measured: bool = False


def measured_rates(
    *,
    guessed: Rates,
    delivered: int,
    tapped: int,
    calls: int,
    mean_call_seconds: float | None,
    mean_tap_delay_seconds: float | None,
) -> Rates:
    """The campaign's own rates in place of the operator's guesses once there is enough of them: at least
    ``MEASURED_MIN_DELIVERED`` messages delivered and ``MEASURED_MIN_CALLS`` calls ended (``calls``, with
    ``mean_call_seconds`` their mean talk time). The tap rate is taps over deliveries; the tap delay is
    measured too when at least as many taps have a delivery time (``mean_tap_delay_seconds``).
    Customers delivered moments ago may tap later, so early in a send the measured tap rate is low
    rather than high; the plan is remade as the campaign goes on."""
    if delivered < MEASURED_MIN_DELIVERED or calls < MEASURED_MIN_CALLS or not mean_call_seconds:
        return guessed
    tap_delay = guessed.tap_delay_seconds
    if tapped >= MEASURED_MIN_CALLS and mean_tap_delay_seconds and mean_tap_delay_seconds > 0:
        tap_delay = mean_tap_delay_seconds
    return Rates(
        tap_rate=min(1.0, tapped / delivered),
        tap_delay_seconds=tap_delay,
        call_seconds=mean_call_seconds,
        is_measured=True,
    )


# --- A campaign's plan ---------------------------------------------------------------------------

# Agents counted as on duty when the campaign names no number of them: signed in and not away.
ON_DUTY_STATUSES = (Agent.Status.AVAILABLE, Agent.Status.RINGING, Agent.Status.ON_CALL, Agent.Status.WRAP_UP)


def campaign_plan(campaign) -> CapacityPlan:
    """The capacity plan of a campaign: its messages still to send (listed, not excluded, not yet sent),
    its expected rates or, once enough of its customers were reached, its measured ones
    (``measured_rates``), its agents on duty (the field, or the agents of the queue that takes the
    number's calls who are signed in and not away), that queue's wrap-up time, its send rate (default:
    the number's throughput) and the number's concurrent-call cap. Reads only."""
    recipients = campaign.recipients.all()
    to_send = recipients.filter(status=Recipient.Status.PENDING, exclusion="").count()
    progress = recipients.aggregate(
        # A message read is delivered, though its `delivered` status may be missing or still to come.
        delivered=Count("pk", filter=Q(delivered_at__isnull=False) | Q(read_at__isnull=False)),
        tapped=Count("pk", filter=Q(tapped_call_at__isnull=False)),
        timed_taps=Count("pk", filter=Q(tapped_call_at__isnull=False, delivered_at__isnull=False)),
        tap_delay=Avg(
            F("tapped_call_at") - F("delivered_at"),
            filter=Q(tapped_call_at__isnull=False, delivered_at__isnull=False),
        ),
        calls=Count("call", filter=Q(call__talk_seconds__isnull=False), distinct=True),
        call_seconds=Avg("call__talk_seconds", filter=Q(call__talk_seconds__isnull=False)),
    )
    guessed = Rates(
        tap_rate=float(campaign.expected_tap_rate),
        tap_delay_seconds=float(campaign.expected_tap_delay_seconds),
        call_seconds=float(campaign.expected_call_seconds),
    )
    rates = measured_rates(
        guessed=guessed,
        delivered=progress["delivered"],
        tapped=progress["tapped"],
        calls=progress["calls"],
        mean_call_seconds=float(progress["call_seconds"]) if progress["call_seconds"] else None,
        mean_tap_delay_seconds=(
            progress["tap_delay"].total_seconds()
            if progress["tap_delay"] is not None and progress["timed_taps"] >= MEASURED_MIN_CALLS
            else None
        ),
    )
    queue = queue_for_number(phone_number_id=campaign.business_number.phone_number_id)
    if campaign.agents_on_duty is not None:
        agents = campaign.agents_on_duty
    elif queue is None:
        agents = 0
    else:
        agents = (
            Agent.objects.filter(memberships__queue=queue, status__in=ON_DUTY_STATUSES).distinct().count()
        )
    throughput = DEFAULT_MESSAGES_PER_SECOND
    send_rate = float(campaign.send_rate_per_second) if campaign.send_rate_per_second else None
    return capacity_plan(
        recipients=to_send,
        send_rate=min(send_rate, throughput) if send_rate else None,
        tap_rate=rates.tap_rate,
        tap_delay_seconds=rates.tap_delay_seconds,
        call_seconds=rates.call_seconds,
        wrap_up_seconds=queue.wrap_up_s if queue else 0,
        agents=agents,
        target_service_level=float(campaign.target_service_level),
        target_answer_seconds=float(campaign.target_answer_seconds),
        concurrent_call_cap=settings.MAX_CONCURRENT_CALLS_PER_DIRECTION,
        messages_per_second=throughput,
        rates_measured=rates.is_measured,
    )


def campaign_plan_apply(campaign) -> CapacityPlan:
    """Plan the campaign (``campaign_plan``) and keep the plan on it: ``plan`` (its figures, inputs,
    lines and the formula, with when it was made) and ``send_rate_per_second`` (the recommended rate;
    empty when no rate keeps the target, which the plan's lines explain and ``is_feasible`` says).
    One UPDATE of those two fields (and ``updated_at``)."""
    plan = campaign_plan(campaign)
    document = {**plan.as_json(), "planned_at": timezone.now().isoformat()}
    rate = plan.recommended_send_rate
    send_rate = Decimal(f"{rate:.{SEND_RATE_PLACES}f}") if rate is not None else None
    now = timezone.now()
    Campaign.objects.filter(pk=campaign.pk).update(
        plan=document, send_rate_per_second=send_rate, updated_at=now
    )
    campaign.plan, campaign.send_rate_per_second, campaign.updated_at = document, send_rate, now
    return plan
