"""Inbound calls in queues and handled calls: counts, waits, the service level (calls.kpis)."""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone

from agents.models import Agent, AgentStatusEvent
from calls.kpis.base import DEFAULT_TARGETS, ZERO, CallFigures, Targets, _ratio
from calls.models import Call

# --- The calls of a period ----------------------------------------------------------------


def calls_of_period(
    *, since: datetime, until: datetime, business_number_ids: Collection[int] | None = None
) -> QuerySet[Call]:
    """The calls that started in [since, until), of the given business numbers (None: all)."""
    calls = Call.objects.filter(started_at__gte=since, started_at__lt=until)
    if business_number_ids is not None:
        calls = calls.filter(business_number_id__in=business_number_ids)
    return calls


def _seconds(value: timedelta | None) -> float:
    return value.total_seconds() if value is not None else 0.0


def _between(end, start) -> ExpressionWrapper:
    """`end - start` of two datetimes, as a duration (each database subtracts its own way)."""
    return ExpressionWrapper(end - start, output_field=DurationField())


def _with_wrap_up(calls: QuerySet[Call], *, now: datetime) -> QuerySet[Call]:
    """Annotate each call with `wrap_up` (a duration): its agent's wrap-up after it, or zero.

    The agent's first status change at or after the call's end is the move to wrap_up when the
    call left the agent in wrap-up; the wrap-up lasts until the agent's next status change.
    """
    after_end = AgentStatusEvent.objects.filter(
        agent_id=OuterRef("agent_id"), changed_at__gte=OuterRef("ended_at")
    ).order_by("changed_at", "pk")
    next_change = AgentStatusEvent.objects.filter(
        agent_id=OuterRef("agent_id"), changed_at__gt=OuterRef("wrap_up_started_at")
    ).order_by("changed_at", "pk")
    return (
        calls.annotate(
            status_after_end=Subquery(after_end.values("status")[:1]),
            wrap_up_started_at=Subquery(after_end.values("changed_at")[:1]),
        )
        .annotate(wrap_up_ended_at=Coalesce(Subquery(next_change.values("changed_at")[:1]), Value(now)))
        .annotate(
            wrap_up=Case(
                When(
                    status_after_end=Agent.Status.WRAP_UP,
                    then=_between(F("wrap_up_ended_at"), F("wrap_up_started_at")),
                ),
                default=Value(ZERO),
                output_field=DurationField(),
            )
        )
    )


HANDLED = Q(status=Call.Status.ENDED, connected_at__isnull=False, agent__isnull=False)
# A conversation: the call was connected to an agent, either way. Only such a call has a sentiment
# (recordings.summaries.had_conversation: the summary of any other has none).
HAD_CONVERSATION = Q(connected_at__isnull=False)


def _handled_sums() -> dict:
    return {
        "handled": Count("pk", filter=HANDLED),
        "talk": Sum("talk_seconds", filter=HANDLED),
        "hold": Sum("hold_seconds", filter=HANDLED),
        "wrap_up_total": Sum("wrap_up", filter=HANDLED),
    }


REACHED_QUEUE = Q(direction=Call.Direction.INBOUND, queued_at__isnull=False)
ANSWERED = REACHED_QUEUE & Q(connected_at__isnull=False)
UNANSWERED = REACHED_QUEUE & Q(connected_at__isnull=True)
ENDED_UNANSWERED = UNANSWERED & Q(status=Call.Status.ENDED)
ABANDONED = ENDED_UNANSWERED & Q(end_reason=Call.EndReason.ABANDONED)


def _scoped_calls(
    *, since: datetime, until: datetime, queue_id: int | None, business_number_ids: Collection[int] | None
) -> QuerySet[Call]:
    calls = calls_of_period(since=since, until=until, business_number_ids=business_number_ids)
    return calls if queue_id is None else calls.filter(queue_id=queue_id)


def _with_wait(calls: QuerySet[Call], *, now: datetime) -> QuerySet[Call]:
    """Annotate each call with `wait`: queued until answered, or until it ended, or until now."""
    return calls.annotate(wait=_between(Coalesce("connected_at", "ended_at", Value(now)), F("queued_at")))


def _service_level_counts(targets: Targets) -> dict:
    """The counts the service level is made of (over calls annotated `_with_wait`)."""
    return {
        "answered": Count("pk", filter=ANSWERED),
        "answered_within_target": Count(
            "pk", filter=ANSWERED & Q(wait__lte=timedelta(seconds=targets.answer_within_s))
        ),
        "abandoned": Count("pk", filter=ABANDONED & Q(wait__gte=timedelta(seconds=targets.short_abandon_s))),
        "no_agent": Count("pk", filter=ENDED_UNANSWERED & Q(end_reason=Call.EndReason.NO_AGENT)),
    }


def call_figures_by_queue(
    *,
    since: datetime,
    until: datetime,
    queue_id: int | None = None,
    business_number_ids: Collection[int] | None = None,
    targets: Targets = DEFAULT_TARGETS,
    now: datetime | None = None,
) -> dict[int | None, CallFigures]:
    """`CallFigures` of the period's calls by queue id (None: calls of no queue), in one query;
    only one queue's with `queue_id`. Queues without calls are absent."""
    now = now or timezone.now()
    calls = _scoped_calls(
        since=since, until=until, queue_id=queue_id, business_number_ids=business_number_ids
    )
    rows = (
        _with_wait(_with_wrap_up(calls, now=now), now=now)
        .values("queue_id")
        .annotate(
            **_service_level_counts(targets),
            calls_queued=Count("pk", filter=REACHED_QUEUE),
            short_abandoned=Count(
                "pk", filter=ABANDONED & Q(wait__lt=timedelta(seconds=targets.short_abandon_s))
            ),
            failed=Count("pk", filter=ENDED_UNANSWERED & Q(end_reason=Call.EndReason.FAILED)),
            waiting=Count("pk", filter=UNANSWERED & Q(status__in=[Call.Status.QUEUED, Call.Status.OFFERED])),
            rejected=Count(
                "pk",
                filter=Q(
                    direction=Call.Direction.INBOUND,
                    queued_at__isnull=True,
                    end_reason=Call.EndReason.REJECTED,
                ),
            ),
            wait_total=Sum("wait", filter=ANSWERED),
            longest_wait=Max("wait", filter=REACHED_QUEUE),
            **_handled_sums(),
        )
        .order_by()
    )
    return {
        row["queue_id"]: CallFigures(
            calls_queued=row["calls_queued"],
            answered=row["answered"],
            answered_within_target=row["answered_within_target"],
            abandoned=row["abandoned"],
            short_abandoned=row["short_abandoned"],
            no_agent=row["no_agent"],
            failed=row["failed"],
            waiting=row["waiting"],
            rejected=row["rejected"],
            wait_seconds=_seconds(row["wait_total"]),
            longest_wait_seconds=None if row["longest_wait"] is None else _seconds(row["longest_wait"]),
            handled=row["handled"],
            talk_seconds=float(row["talk"] or 0),
            hold_seconds=float(row["hold"] or 0),
            wrap_up_seconds=_seconds(row["wrap_up_total"]),
        )
        for row in rows
    }


# --- The service level alone (the wallboard's) ---------------------------------------------

SERVICE_LEVEL_GOAL = Targets().goal_percent / 100  # as a fraction of 1


@dataclass(frozen=True)
class ServiceLevel:
    answered_within_target: int = 0
    calls: int = 0  # answered + abandoned (short ones left out) + no_agent

    @property
    def value(self) -> float | None:
        return _ratio(self.answered_within_target, self.calls)


def _service_level_of(row: dict) -> ServiceLevel:
    return ServiceLevel(
        answered_within_target=row["answered_within_target"],
        calls=row["answered"] + row["abandoned"] + row["no_agent"],
    )


def service_level(
    *,
    since: datetime,
    until: datetime,
    queue_id: int | None = None,
    business_number_ids: Collection[int] | None = None,
    targets: Targets = DEFAULT_TARGETS,
) -> ServiceLevel:
    """The service level of the period's calls (as `CallFigures.service_level`), in one light query."""
    calls = _scoped_calls(
        since=since, until=until, queue_id=queue_id, business_number_ids=business_number_ids
    )
    return _service_level_of(
        _with_wait(calls, now=timezone.now()).aggregate(**_service_level_counts(targets))
    )


def service_level_by_queue(
    *, since: datetime, until: datetime, targets: Targets = DEFAULT_TARGETS
) -> dict[int | None, ServiceLevel]:
    """The service level of the period's calls by queue id (as `service_level`), in one query;
    queues without calls are absent."""
    rows = (
        _with_wait(
            _scoped_calls(since=since, until=until, queue_id=None, business_number_ids=None),
            now=timezone.now(),
        )
        .values("queue_id")
        .annotate(**_service_level_counts(targets))
        .order_by()
    )
    return {row["queue_id"]: _service_level_of(row) for row in rows}


def service_level_by_hour(
    *,
    since: datetime,
    until: datetime,
    queue_id: int | None = None,
    business_number_ids: Collection[int] | None = None,
    targets: Targets = DEFAULT_TARGETS,
) -> dict[int, float | None]:
    """The service level of the calls that started in each hour of the period, by the hour of the
    day in the current time zone (0-23; the two hours 1 a.m. of a night the clocks go back are one),
    in one query. Hours without calls are absent; an hour whose calls none count is None."""
    zone = timezone.get_current_timezone()
    calls = _scoped_calls(
        since=since, until=until, queue_id=queue_id, business_number_ids=business_number_ids
    )
    rows = (
        _with_wait(calls, now=timezone.now())
        .annotate(hour=TruncHour("started_at", tzinfo=zone))
        .values("hour")
        .annotate(**_service_level_counts(targets))
        .order_by()
    )
    by_hour: dict[int, ServiceLevel] = {}
    for row in rows:
        hour, level = timezone.localtime(row["hour"], zone).hour, _service_level_of(row)
        before = by_hour.get(hour, ServiceLevel())
        by_hour[hour] = ServiceLevel(
            answered_within_target=before.answered_within_target + level.answered_within_target,
            calls=before.calls + level.calls,
        )
    return {hour: level.value for hour, level in sorted(by_hour.items())}
