"""The contact centre's KPIs for the CRM: service level, waits, abandons, handle time, occupancy,
agents' answer rates and the WhatsApp figures of a period (calls.kpis defines each one)."""

from datetime import timedelta

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from agents.models import Queue
from calls.kpis import (
    Kpis,
    Targets,
    agent_figures_row,
    call_figures_row,
    kpis_of_period,
    whatsapp_figures_row,
)
from integrations.api.base import ApiView, IdField, InvalidValueSerializer, Refused, query_of
from integrations.api.billing import CanSeeCosts
from messaging.reports import MAX_REPORT_DAYS

RATE_HELP = "A fraction of 1 (0.8 is 80 %), or null when nothing counts for it."
SECONDS_HELP = "Seconds, or null when nothing counts for it."
TARGETS = (
    "answer_within_s",
    "goal_percent",
    "short_abandon_s",
)  # query parameters that set calls.kpis.Targets


def _rate(help_text: str = RATE_HELP) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=help_text)


def _seconds(help_text: str = SECONDS_HELP) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=help_text)


class CallFiguresSerializer(serializers.Serializer):
    calls_queued = serializers.IntegerField(help_text="Inbound calls that reached a queue.")
    answered = serializers.IntegerField()
    answered_within_target = serializers.IntegerField(
        help_text="Answered within answer_within_s of queueing."
    )
    abandoned = serializers.IntegerField(
        help_text="The caller left while waiting; short abandons not included."
    )
    short_abandoned = serializers.IntegerField(help_text="The caller left within short_abandon_s.")
    no_agent = serializers.IntegerField(help_text="Ended at the queue's maximum wait.")
    failed = serializers.IntegerField(help_text="Failed before an agent answered (left out of the rates).")
    waiting = serializers.IntegerField(help_text="Still waiting now (left out of the rates).")
    rejected = serializers.IntegerField(help_text="Refused before reaching a queue (capacity, closed).")
    service_level = _rate("Answered within target / (answered + abandoned + no_agent); null when none.")
    abandonment_rate = _rate("Abandoned / (answered + abandoned + no_agent); null when none.")
    asa_seconds = _seconds("Average speed of answer: the answered calls' average wait.")
    longest_wait_seconds = _seconds()
    handled = serializers.IntegerField(help_text="Calls connected to an agent that have ended, either way.")
    aht_seconds = _seconds("Average handle time: talk + hold + wrap-up, per handled call.")
    average_talk_seconds = _seconds()
    average_hold_seconds = _seconds()
    average_wrap_up_seconds = _seconds()


class QueueKpiSerializer(CallFiguresSerializer):
    id = serializers.IntegerField(allow_null=True, help_text="null: calls of no queue (business calls).")
    name = serializers.CharField()


class AgentKpiSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    signed_in_seconds = serializers.FloatField(help_text="Available, ringing, on a call or in wrap-up.")
    busy_seconds = serializers.FloatField(help_text="Ringing, on a call or in wrap-up.")
    available_seconds = serializers.FloatField()
    ringing_seconds = serializers.FloatField()
    on_call_seconds = serializers.FloatField()
    wrap_up_seconds = serializers.FloatField()
    away_seconds = serializers.FloatField()
    occupancy = _rate("Busy / signed in; null when never signed in.")
    offers = serializers.IntegerField()
    accepted = serializers.IntegerField()
    declined = serializers.IntegerField()
    rang_out = serializers.IntegerField()
    answer_rate = _rate("Accepted / (accepted + declined + rang out); null without offers.")
    handled = serializers.IntegerField()
    aht_seconds = _seconds()


class CallCostSerializer(serializers.Serializer):
    currency = serializers.CharField()
    connected_seconds = serializers.IntegerField(help_text="Of the priced calls.")
    amount = serializers.DecimalField(max_digits=18, decimal_places=4)
    cost_per_connected_minute = serializers.DecimalField(max_digits=18, decimal_places=4, allow_null=True)
    unpriced_calls = serializers.IntegerField(help_text="Calls no rate prices yet: left out, not free.")
    unpriced_seconds = serializers.IntegerField()


class WhatsAppKpiSerializer(serializers.Serializer):
    permission_requests_sent = serializers.IntegerField()
    permission_requests_granted = serializers.IntegerField(help_text="Of those sent, granted so far.")
    permission_grant_rate = _rate()
    permission_revocations = serializers.IntegerField()
    outbound_placed = serializers.IntegerField(help_text="Business calls placed (not still ringing).")
    outbound_connected = serializers.IntegerField()
    outbound_answer_rate = _rate()
    costs = CallCostSerializer(
        many=True, allow_null=True, help_text="Per currency; null unless the caller may see costs."
    )


class TargetsSerializer(serializers.Serializer):
    answer_within_s = serializers.IntegerField()
    goal_percent = serializers.IntegerField()
    short_abandon_s = serializers.IntegerField()


class KpiSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    queue = serializers.IntegerField(allow_null=True)
    number = serializers.IntegerField(allow_null=True)
    targets = TargetsSerializer()
    total = CallFiguresSerializer(help_text="All the calls in scope (the queues' rows added up).")
    queues = QueueKpiSerializer(many=True)
    occupancy = _rate("All the agents' busy time over their signed-in time.")
    agents = AgentKpiSerializer(many=True)
    whatsapp = WhatsAppKpiSerializer()


class KpiApi(ApiView):
    """GET: the KPIs of a period [since, until) for the caller's numbers, one queue or all: each
    queue's calls and their total, each agent's time and offers, and the WhatsApp figures. A call
    counts in the period in which it started; agents' time is cut to the period. Call costs come
    only to a caller who may see costs (the `admin` scope, or the permission to view charges)."""

    class QuerySerializer(serializers.Serializer):
        since = serializers.DateTimeField(help_text="From (included); ISO 8601 with its UTC offset.")
        until = serializers.DateTimeField(
            help_text=f"To (excluded); {MAX_REPORT_DAYS} days after since at most."
        )
        queue = IdField(required=False, help_text="One queue's calls (a queue serving one of your numbers).")
        number = IdField(required=False, help_text="One business number's calls.")
        answer_within_s = serializers.IntegerField(
            required=False, min_value=1, max_value=3600, help_text="The service level's Y (default 20)."
        )
        goal_percent = serializers.IntegerField(
            required=False, min_value=1, max_value=100, help_text="The service level's X (default 80)."
        )
        short_abandon_s = serializers.IntegerField(
            required=False, min_value=0, max_value=600, help_text="Short abandons: under this (default 5)."
        )

    @extend_schema(
        operation_id="kpis_retrieve",
        parameters=[QuerySerializer],
        responses={
            200: KpiSerializer,
            422: OpenApiResponse(
                InvalidValueSerializer,
                description="invalid_period: `until` is not after `since`, or too far after it.",
            ),
        },
    )
    def get(self, request):
        if not self.caller().sees_kpis:
            raise PermissionDenied("The floor's figures are for supervisors.")
        query = self.QuerySerializer(data=query_of(request))
        query.is_valid(raise_exception=True)
        wanted = query.validated_data
        since, until = wanted["since"], wanted["until"]
        if until <= since:
            raise Refused(422, "invalid_period", "The period must end after it starts.", field="until")
        if until - since > timedelta(days=MAX_REPORT_DAYS):
            raise Refused(
                422, "invalid_period", f"A period covers {MAX_REPORT_DAYS} days at most.", field="until"
            )
        numbers = self.caller().number_ids
        queue_id, number_id = wanted.get("queue"), wanted.get("number")
        if (
            queue_id is not None
            and not Queue.objects.filter(pk=queue_id, business_numbers__in=numbers).exists()
        ):
            raise NotFound("No such queue.")
        if number_id is not None:
            self.business_number(number_id)
        targets = Targets(**{name: wanted[name] for name in TARGETS if name in wanted})
        report = kpis_of_period(
            since=since,
            until=until,
            queue_id=queue_id,
            business_number_id=number_id,
            business_number_ids=numbers,
            targets=targets,
        )
        may_see_costs = CanSeeCosts().has_permission(request, self)
        return Response(
            KpiSerializer(
                _kpi_data(report=report, queue_id=queue_id, number_id=number_id, may_see_costs=may_see_costs)
            ).data
        )


def _kpi_data(*, report: Kpis, queue_id: int | None, number_id: int | None, may_see_costs: bool) -> dict:
    return {
        "since": report.since,
        "until": report.until,
        "queue": queue_id,
        "number": number_id,
        "targets": vars(report.targets),
        "total": call_figures_row(figures=report.total),
        "queues": [
            {"id": row.queue_id, "name": row.name, **call_figures_row(figures=row.figures)}
            for row in report.queues
        ],
        "occupancy": agent_figures_row(figures=report.agents_total)["occupancy"],
        "agents": [
            {"id": row.agent_id, "name": row.name, **agent_figures_row(figures=row.figures)}
            for row in report.agents
        ],
        "whatsapp": whatsapp_figures_row(figures=report.whatsapp, with_costs=may_see_costs),
    }
