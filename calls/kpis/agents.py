"""Agents' time and offers: occupancy, answer rate, missed offers (calls.kpis)."""

from collections.abc import Collection
from datetime import datetime, timedelta

from django.db.models import (
    Count,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from agents.models import Agent, AgentStatusEvent
from calls.kpis.base import RANG_OUT, AgentFigures
from calls.kpis.queues import HANDLED, _between, _handled_sums, _scoped_calls, _seconds, _with_wrap_up
from calls.models import Call, CallEvent

# --- Agents -------------------------------------------------------------------------------


def agent_status_seconds(
    *, agent_ids: Collection[int], since: datetime, until: datetime, now: datetime | None = None
) -> dict[int, dict[str, float]]:
    """Seconds each agent spent in each status within [since, until) (and before now), from the
    status history: each status lasts from its change to the agent's next change (or to now). Two
    queries: the status each agent was in at `since`, and the changes inside the period."""
    end = min(until, now or timezone.now())
    seconds: dict[int, dict[str, float]] = {}
    if end <= since or not agent_ids:
        return seconds

    def add(agent_id: int, status: str | None, duration: timedelta | None) -> None:
        if status is not None and duration is not None:
            by_status = seconds.setdefault(agent_id, {})
            by_status[status] = by_status.get(status, 0.0) + duration.total_seconds()

    def of_agent(**lookups) -> QuerySet[AgentStatusEvent]:
        return AgentStatusEvent.objects.filter(agent_id=OuterRef("pk"), **lookups)

    # The status that began before the period, up to the first change inside it (or the end).
    at_start = (
        Agent.objects.filter(pk__in=agent_ids)
        .annotate(
            status_at_since=Subquery(
                of_agent(changed_at__lt=since).order_by("-changed_at", "-pk").values("status")[:1]
            ),
            first_change=Subquery(
                of_agent(changed_at__gte=since).order_by("changed_at", "pk").values("changed_at")[:1]
            ),
        )
        .annotate(duration=_between(Least(Coalesce("first_change", Value(end)), Value(end)), Value(since)))
        .values_list("pk", "status_at_since", "duration")
    )
    for agent_id, status, duration in at_start:
        add(agent_id, status, duration)
    # Each change inside the period, up to the next change (a tie in time is broken by the row's id).
    next_change = AgentStatusEvent.objects.filter(
        Q(changed_at__gt=OuterRef("changed_at"))
        | Q(changed_at=OuterRef("changed_at"), pk__gt=OuterRef("pk")),
        agent_id=OuterRef("agent_id"),
    ).order_by("changed_at", "pk")
    inside = (
        AgentStatusEvent.objects.filter(agent_id__in=agent_ids, changed_at__gte=since, changed_at__lt=end)
        .annotate(next_at=Subquery(next_change.values("changed_at")[:1]))
        .values("agent_id", "status")
        .annotate(total=Sum(_between(Least(Coalesce("next_at", Value(end)), Value(end)), F("changed_at"))))
        .order_by()
    )
    for row in inside:
        add(row["agent_id"], row["status"], row["total"])
    return seconds


def agent_call_figures(
    *,
    since: datetime,
    until: datetime,
    queue_id: int | None = None,
    business_number_ids: Collection[int] | None = None,
    now: datetime | None = None,
) -> dict[int, AgentFigures]:
    """Offers and handled calls per agent (no status time), for the period's calls: two queries."""
    now = now or timezone.now()
    calls = _scoped_calls(
        since=since, until=until, queue_id=queue_id, business_number_ids=business_number_ids
    )
    offered = Q(to_status=Call.Status.OFFERED)
    missed = Q(from_status=Call.Status.OFFERED, to_status=Call.Status.QUEUED)
    offers = (
        CallEvent.objects.filter(call__in=calls.values("pk"), agent_id__isnull=False)
        .values("agent_id")
        .annotate(
            offers=Count("pk", filter=offered),
            accepted=Count("pk", filter=Q(from_status=Call.Status.OFFERED, to_status=Call.Status.CONNECTED)),
            rang_out=Count("pk", filter=missed & Q(detail=RANG_OUT)),
            missed=Count("pk", filter=missed),
        )
        .order_by()
    )
    handled = (
        _with_wrap_up(calls.filter(HANDLED), now=now)
        .values("agent_id")
        .annotate(**_handled_sums())
        .order_by()
    )
    figures: dict[int, dict] = {}
    for row in offers:
        figures.setdefault(row["agent_id"], {}).update(
            offers=row["offers"],
            accepted=row["accepted"],
            rang_out=row["rang_out"],
            declined=row["missed"] - row["rang_out"],
        )
    for row in handled:
        figures.setdefault(row["agent_id"], {}).update(
            handled=row["handled"],
            talk_seconds=float(row["talk"] or 0),
            hold_seconds=float(row["hold"] or 0),
            wrap_up_seconds=_seconds(row["wrap_up_total"]),
        )
    return {agent_id: AgentFigures(**values) for agent_id, values in figures.items()}
