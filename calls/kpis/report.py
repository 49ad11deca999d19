"""A period's KPIs together, and as rows for the API and the CSV export (calls.kpis)."""

from collections.abc import Collection
from dataclasses import fields
from datetime import datetime

from django.db.models import (
    Q,
)
from django.utils import timezone

from agents.models import Agent, Queue
from calls.kpis.agents import agent_call_figures, agent_status_seconds
from calls.kpis.base import (
    DEFAULT_TARGETS,
    SIGNED_IN_STATUSES,
    AgentFigures,
    AgentRow,
    CallFigures,
    Kpis,
    QueueRow,
    Targets,
    WhatsAppFigures,
)
from calls.kpis.queues import call_figures_by_queue
from calls.kpis.whatsapp import whatsapp_figures
from whatsapp.models import BusinessNumber

# --- Everything ---------------------------------------------------------------------------


def kpis_of_period(
    *,
    since: datetime,
    until: datetime,
    queue_id: int | None = None,
    business_number_id: int | None = None,
    business_number_ids: Collection[int] | None = None,
    targets: Targets = DEFAULT_TARGETS,
    now: datetime | None = None,
) -> Kpis:
    """Every KPI of the period, for one queue or all, one business number or all, within the numbers
    a caller may see (`business_number_ids`; None: every number). Ten queries however many calls,
    agents and queues there are. `now` (default: now) ends what is still going on: a wait, a
    status, a wrap-up.

    Queue rows: the queues in scope (serving the numbers, or the one asked for) and any queue that
    had calls, plus a row of calls of no queue when there are some (business-initiated calls, calls
    refused for lack of a queue) and no queue was asked for. Agent rows: the members of those
    queues (all agents when the scope is every number). WhatsApp figures: the scope's numbers (a
    queue's: the numbers it serves).
    """
    now = now or timezone.now()
    numbers = None if business_number_ids is None else set(business_number_ids)
    if business_number_id is not None:
        numbers = {business_number_id} if numbers is None else numbers & {business_number_id}
    queues = Queue.objects.order_by("name", "pk")
    if queue_id is not None:
        queues = queues.filter(pk=queue_id)
    elif numbers is not None:
        queues = queues.filter(business_numbers__in=numbers).distinct()
    by_queue = call_figures_by_queue(
        since=since, until=until, queue_id=queue_id, business_number_ids=numbers, targets=targets, now=now
    )
    shown = list(
        Queue.objects.filter(Q(pk__in=queues.values("pk")) | Q(pk__in=[pk for pk in by_queue if pk]))
        .order_by("name", "pk")
        .values_list("pk", "name")
    )
    rows = [QueueRow(queue_id=pk, name=name, figures=by_queue.get(pk, CallFigures())) for pk, name in shown]
    if None in by_queue and queue_id is None:
        rows.append(QueueRow(queue_id=None, name="No queue", figures=by_queue[None]))
    total = sum((row.figures for row in rows), CallFigures())

    agents = Agent.objects.select_related("user").order_by("display_name", "pk")
    if queue_id is not None or numbers is not None:
        agents = agents.filter(memberships__queue__in=queues.values("pk")).distinct()
    agents = list(agents)
    time_by_agent = agent_status_seconds(
        agent_ids=[agent.pk for agent in agents], since=since, until=until, now=now
    )
    calls_by_agent = agent_call_figures(
        since=since, until=until, queue_id=queue_id, business_number_ids=numbers, now=now
    )
    agent_rows = []
    for agent in agents:
        of_calls = calls_by_agent.get(agent.pk, AgentFigures())
        figures = AgentFigures(
            **{
                item.name: getattr(of_calls, item.name)
                for item in fields(of_calls)
                if item.name != "status_seconds"
            },
            status_seconds=time_by_agent.get(agent.pk, {}),
        )
        agent_rows.append(AgentRow(agent_id=agent.pk, name=agent.name, figures=figures))

    whatsapp_numbers: Collection[int] | None = numbers
    if queue_id is not None:
        served = BusinessNumber.objects.filter(queues=queue_id)
        if numbers is not None:
            served = served.filter(pk__in=numbers)
        whatsapp_numbers = served.values_list("pk", flat=True)
    whatsapp = whatsapp_figures(since=since, until=until, business_number_ids=whatsapp_numbers)
    return Kpis(
        since=since,
        until=until,
        targets=targets,
        queues=rows,
        total=total,
        agents=agent_rows,
        whatsapp=whatsapp,
    )


# --- Rows for people and programs (the API and the CSV export) ----------------------------


def _rounded(value: float | None, places: int) -> float | None:
    return None if value is None else round(value, places)


def call_figures_row(*, figures: CallFigures) -> dict:
    """A queue's (or the total's) figures as the API and the CSV give them: counts, seconds to a
    tenth, rates as fractions of 1 to four places; None where a KPI has no denominator."""
    return {
        "calls_queued": figures.calls_queued,
        "answered": figures.answered,
        "answered_within_target": figures.answered_within_target,
        "abandoned": figures.abandoned,
        "short_abandoned": figures.short_abandoned,
        "no_agent": figures.no_agent,
        "failed": figures.failed,
        "waiting": figures.waiting,
        "rejected": figures.rejected,
        "service_level": _rounded(figures.service_level, 4),
        "abandonment_rate": _rounded(figures.abandonment_rate, 4),
        "asa_seconds": _rounded(figures.asa_seconds, 1),
        "longest_wait_seconds": _rounded(figures.longest_wait_seconds, 1),
        "handled": figures.handled,
        "aht_seconds": _rounded(figures.aht_seconds, 1),
        "average_talk_seconds": _rounded(figures.average_talk_seconds, 1),
        "average_hold_seconds": _rounded(figures.average_hold_seconds, 1),
        "average_wrap_up_seconds": _rounded(figures.average_wrap_up_seconds, 1),
    }


def agent_figures_row(*, figures: AgentFigures) -> dict:
    """An agent's figures as the API and the CSV give them (seconds to a tenth, rates to four places)."""
    return {
        "signed_in_seconds": round(figures.signed_in_seconds, 1),
        "busy_seconds": round(figures.busy_seconds, 1),
        **{
            f"{status}_seconds": round(figures.status_seconds.get(status, 0.0), 1)
            for status in (*SIGNED_IN_STATUSES, Agent.Status.AWAY)
        },
        "occupancy": _rounded(figures.occupancy, 4),
        "offers": figures.offers,
        "accepted": figures.accepted,
        "declined": figures.declined,
        "rang_out": figures.rang_out,
        "answer_rate": _rounded(figures.answer_rate, 4),
        "handled": figures.handled,
        "aht_seconds": _rounded(figures.aht_seconds, 1),
    }


def whatsapp_figures_row(*, figures: WhatsAppFigures, with_costs: bool) -> dict:
    """The WhatsApp figures as the API gives them; `costs` None for whoever may not see costs."""
    costs = [
        {
            "currency": cost.currency,
            "connected_seconds": cost.connected_seconds,
            "amount": cost.amount,
            "cost_per_connected_minute": cost.cost_per_connected_minute,
            "unpriced_calls": cost.unpriced_calls,
            "unpriced_seconds": cost.unpriced_seconds,
        }
        for cost in figures.costs
    ]
    return {
        "permission_requests_sent": figures.permission_requests_sent,
        "permission_requests_granted": figures.permission_requests_granted,
        "permission_grant_rate": _rounded(figures.permission_grant_rate, 4),
        "permission_revocations": figures.permission_revocations,
        "outbound_placed": figures.outbound_placed,
        "outbound_connected": figures.outbound_connected,
        "outbound_answer_rate": _rounded(figures.outbound_answer_rate, 4),
        "costs": costs if with_costs else None,
    }


def kpis_table(*, report: Kpis, by: str = "queue") -> list[list]:
    """The KPIs as a table (the CSV export): a header, then one row per queue (a no-queue row when
    there are such calls) and a Total row; or, `by="agent"`, one row per agent and an All agents
    row. Every row names the period; None is a KPI without a denominator."""
    period = [report.since.isoformat(), report.until.isoformat()]
    if by == "agent":
        header = ["agent_id", "agent", "since", "until", *agent_figures_row(figures=AgentFigures())]
        rows = [
            [row.agent_id, row.name, *period, *agent_figures_row(figures=row.figures).values()]
            for row in report.agents
        ]
        rows.append([None, "All agents", *period, *agent_figures_row(figures=report.agents_total).values()])
    else:
        header = ["queue_id", "queue", "since", "until", *call_figures_row(figures=CallFigures())]
        rows = [
            [row.queue_id, row.name, *period, *call_figures_row(figures=row.figures).values()]
            for row in report.queues
        ]
        rows.append([None, "Total", *period, *call_figures_row(figures=report.total).values()])
    return [header, *rows]
