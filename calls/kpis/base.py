"""What every KPI shares: the targets, the periods, the figures (calls.kpis says what each means)."""

from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from agents.models import Agent

ZERO = timedelta(0)
BUSY_STATUSES = (Agent.Status.RINGING, Agent.Status.ON_CALL, Agent.Status.WRAP_UP)
SIGNED_IN_STATUSES = (Agent.Status.AVAILABLE, *BUSY_STATUSES)
RANG_OUT = "rang out"  # calls.routing.offer_decline's detail of an offer that rang out


@dataclass(frozen=True)
class Targets:
    """The service level's goal X (percent) and threshold Y (seconds), and the short-abandon threshold."""

    answer_within_s: int = 20
    goal_percent: int = 80
    short_abandon_s: int = 5


DEFAULT_TARGETS = Targets()


# --- Periods ------------------------------------------------------------------------------


def local_day(*, day: date, time_zone: str | None = None) -> tuple[datetime, datetime]:
    """[since, until) of one calendar day in a time zone (a queue's `timezone`; the site's
    TIME_ZONE by default): midnight to the next midnight, 23 or 25 hours long on a clock change."""
    zone = ZoneInfo(time_zone or settings.TIME_ZONE)
    return (
        datetime.combine(day, time(0), tzinfo=zone),
        datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone),
    )


def today_in(*, time_zone: str | None = None) -> date:
    """Today's date in a time zone (the site's TIME_ZONE by default)."""
    return timezone.now().astimezone(ZoneInfo(time_zone or settings.TIME_ZONE)).date()


# --- Figures ------------------------------------------------------------------------------


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class CallFigures:
    """Counts and sums of the calls of one queue (or of no queue, or all): the KPIs are ratios of them,
    so that figures of several queues add up to their total (`+`)."""

    calls_queued: int = 0
    answered: int = 0
    answered_within_target: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    no_agent: int = 0
    failed: int = 0
    waiting: int = 0
    rejected: int = 0
    wait_seconds: float = 0.0  # of the answered calls
    longest_wait_seconds: float | None = None
    handled: int = 0
    talk_seconds: float = 0.0  # connected time, hold included
    hold_seconds: float = 0.0
    wrap_up_seconds: float = 0.0

    def __add__(self, other: "CallFigures") -> "CallFigures":
        longest = [
            value for value in (self.longest_wait_seconds, other.longest_wait_seconds) if value is not None
        ]
        return CallFigures(
            **{
                item.name: getattr(self, item.name) + getattr(other, item.name)
                for item in fields(self)
                if item.name != "longest_wait_seconds"
            },
            longest_wait_seconds=max(longest) if longest else None,
        )

    @property
    def service_level_calls(self) -> int:
        """The denominator of the service level and of the abandonment rate."""
        return self.answered + self.abandoned + self.no_agent

    @property
    def service_level(self) -> float | None:
        return _ratio(self.answered_within_target, self.service_level_calls)

    @property
    def abandonment_rate(self) -> float | None:
        return _ratio(self.abandoned, self.service_level_calls)

    @property
    def asa_seconds(self) -> float | None:
        return _ratio(self.wait_seconds, self.answered)

    @property
    def aht_seconds(self) -> float | None:
        return _ratio(self.talk_seconds + self.wrap_up_seconds, self.handled)

    @property
    def average_talk_seconds(self) -> float | None:
        return _ratio(self.talk_seconds - self.hold_seconds, self.handled)

    @property
    def average_hold_seconds(self) -> float | None:
        return _ratio(self.hold_seconds, self.handled)

    @property
    def average_wrap_up_seconds(self) -> float | None:
        return _ratio(self.wrap_up_seconds, self.handled)


@dataclass(frozen=True)
class AgentFigures:
    """One agent's time by status (clipped to the period), offers and handled calls."""

    status_seconds: dict[str, float] = field(default_factory=dict)
    offers: int = 0
    accepted: int = 0
    declined: int = 0
    rang_out: int = 0
    handled: int = 0
    talk_seconds: float = 0.0  # hold included
    hold_seconds: float = 0.0
    wrap_up_seconds: float = 0.0  # of the handled calls (AHT), not the time in wrap_up status

    def __add__(self, other: "AgentFigures") -> "AgentFigures":
        status_seconds = dict(self.status_seconds)
        for status, seconds in other.status_seconds.items():
            status_seconds[status] = status_seconds.get(status, 0.0) + seconds
        return AgentFigures(
            **{
                item.name: getattr(self, item.name) + getattr(other, item.name)
                for item in fields(self)
                if item.name != "status_seconds"
            },
            status_seconds=status_seconds,
        )

    @property
    def signed_in_seconds(self) -> float:
        return sum(self.status_seconds.get(status, 0.0) for status in SIGNED_IN_STATUSES)

    @property
    def busy_seconds(self) -> float:
        return sum(self.status_seconds.get(status, 0.0) for status in BUSY_STATUSES)

    @property
    def occupancy(self) -> float | None:
        return _ratio(self.busy_seconds, self.signed_in_seconds)

    @property
    def missed(self) -> int:
        return self.declined + self.rang_out

    @property
    def answer_rate(self) -> float | None:
        return _ratio(self.accepted, self.accepted + self.missed)

    @property
    def aht_seconds(self) -> float | None:
        return _ratio(self.talk_seconds + self.wrap_up_seconds, self.handled)


@dataclass(frozen=True)
class CallCost:
    """The period's call charges in one currency."""

    currency: str
    connected_seconds: int  # of the priced charges
    amount: Decimal
    unpriced_calls: int
    unpriced_seconds: int

    @property
    def cost_per_connected_minute(self) -> Decimal | None:
        if not self.connected_seconds:
            return None
        return (self.amount * 60 / self.connected_seconds).quantize(Decimal("0.0001"))


@dataclass(frozen=True)
class WhatsAppFigures:
    permission_requests_sent: int = 0
    permission_requests_granted: int = 0
    permission_revocations: int = 0
    outbound_placed: int = 0
    outbound_connected: int = 0
    costs: list[CallCost] = field(default_factory=list)

    @property
    def permission_grant_rate(self) -> float | None:
        return _ratio(self.permission_requests_granted, self.permission_requests_sent)

    @property
    def outbound_answer_rate(self) -> float | None:
        return _ratio(self.outbound_connected, self.outbound_placed)


@dataclass(frozen=True)
class QueueRow:
    queue_id: int | None  # None: calls of no queue (business-initiated, or refused for lack of one)
    name: str
    figures: CallFigures


@dataclass(frozen=True)
class AgentRow:
    agent_id: int
    name: str
    figures: AgentFigures


@dataclass(frozen=True)
class Kpis:
    """Everything for one period and scope: `total` is the sum of `queues` (the no-queue row included)."""

    since: datetime
    until: datetime
    targets: Targets
    queues: list[QueueRow]
    total: CallFigures
    agents: list[AgentRow]
    whatsapp: WhatsAppFigures

    @property
    def agents_total(self) -> AgentFigures:
        """The agents' figures added up: its occupancy is all their busy time over all their
        signed-in time (the overall occupancy), its answer rate all their offers'."""
        return sum((row.figures for row in self.agents), AgentFigures())
