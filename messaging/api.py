"""The billing reports in the API: what the account spends, by day, category and country, and calls.

Users who may view charges see the whole account, as on the costs page; an API key with the `admin`
scope sees its own business numbers' charges only.
"""

import datetime

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.models import ApiKey
from messaging.selectors import call_cost_totals, call_costs_by_day, spend_by_day, spend_totals

MAX_REPORT_DAYS = 366
DEFAULT_REPORT_DAYS = 30


class CanSeeCosts(permissions.BasePermission):
    """A user with the permission to view charges, or an API key with the `admin` scope."""

    message = "Seeing what the account spends needs the permission to view charges."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            self.message = "This API key lacks the 'admin' scope."
            return ApiKey.Scope.ADMIN in request.auth.scopes
        return bool(request.user and request.user.has_perm("messaging.view_charge"))


def charges_seen(request) -> frozenset[int] | None:
    """The business numbers whose charges the request sees: an API key's own; None for a user who may
    view charges (the whole account)."""
    if isinstance(request.auth, ApiKey):
        return frozenset(request.auth.business_numbers.values_list("pk", flat=True))
    return None


class PeriodSerializer(serializers.Serializer):
    """``since`` and ``until``, both included (UTC days); the last 30 days by default, a year at most."""

    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)

    def validate(self, attrs: dict) -> dict:
        until = attrs.get("until") or timezone.now().date()
        since = attrs.get("since") or until - datetime.timedelta(days=DEFAULT_REPORT_DAYS - 1)
        if since > until:
            raise serializers.ValidationError({"since": "The first day comes after the last."})
        if (until - since).days >= MAX_REPORT_DAYS:
            raise serializers.ValidationError({"since": f"A report covers {MAX_REPORT_DAYS} days at most."})
        return {"since": since, "until": until}


def report_period(params) -> tuple[datetime.date, datetime.date]:
    """The period a query string asks for; DRF's ValidationError when it is not one."""
    period = PeriodSerializer(data=params)
    period.is_valid(raise_exception=True)
    return period.validated_data["since"], period.validated_data["until"]


def report_schema(name: str, row: type[serializers.Serializer], total: type[serializers.Serializer]):
    """The OpenAPI description of a report: its period, its rows and its totals per currency."""
    fields = {"since": serializers.DateField(), "until": serializers.DateField()}
    fields |= {"rows": row(many=True), "totals": total(many=True)}
    return extend_schema(parameters=[PeriodSerializer], responses=inline_serializer(name, fields))


def report_response(request, *, rows_of, totals_of, row, total) -> Response:
    """A report for the period the query asks, of the charges the request sees:
    `rows_of(since, until, business_number_ids)` and `totals_of(rows)`."""
    since, until = report_period(request.query_params.dict())  # a blank date is an error, not a default
    rows = rows_of(since=since, until=until, business_number_ids=charges_seen(request))
    return Response(
        {
            "since": since,
            "until": until,
            "rows": row(rows, many=True).data,
            "totals": total(totals_of(rows), many=True).data,
        }
    )


class SpendReportApi(APIView):
    """GET: the ledger by day, category, country and currency, with totals per currency."""

    permission_classes = [CanSeeCosts]

    class SpendRowSerializer(serializers.Serializer):
        day = serializers.DateField()
        category = serializers.CharField()
        country = serializers.CharField()
        currency = serializers.CharField()
        charges = serializers.IntegerField()
        charged = serializers.IntegerField()
        unpriced = serializers.IntegerField()
        amount = serializers.DecimalField(max_digits=16, decimal_places=4)

    class SpendTotalSerializer(serializers.Serializer):
        currency = serializers.CharField()
        charges = serializers.IntegerField()
        charged = serializers.IntegerField()
        unpriced = serializers.IntegerField()
        amount = serializers.DecimalField(max_digits=18, decimal_places=4)

    @report_schema("SpendReport", SpendRowSerializer, SpendTotalSerializer)
    def get(self, request):
        return report_response(
            request, rows_of=spend_by_day, totals_of=spend_totals, row=self.SpendRowSerializer,
            total=self.SpendTotalSerializer,
        )  # fmt: skip


class CallCostReportApi(APIView):
    """GET: connected calls by day, country and currency: the business's calls (minutes, cost) and the
    customers' calls, free, with what they would have cost as business-initiated calls."""

    permission_classes = [CanSeeCosts]

    class CallCostRowSerializer(serializers.Serializer):
        day = serializers.DateField()
        country = serializers.CharField()
        currency = serializers.CharField()
        outbound_calls = serializers.IntegerField()
        outbound_seconds = serializers.IntegerField()
        outbound_amount = serializers.DecimalField(max_digits=16, decimal_places=4)
        outbound_unpriced = serializers.IntegerField()
        inbound_calls = serializers.IntegerField()
        inbound_seconds = serializers.IntegerField()
        inbound_as_outbound = serializers.DecimalField(max_digits=16, decimal_places=4, allow_null=True)

    class CallCostTotalSerializer(serializers.Serializer):
        currency = serializers.CharField()
        outbound_calls = serializers.IntegerField()
        outbound_seconds = serializers.IntegerField()
        outbound_amount = serializers.DecimalField(max_digits=18, decimal_places=4)
        outbound_unpriced = serializers.IntegerField()
        inbound_calls = serializers.IntegerField()
        inbound_seconds = serializers.IntegerField()
        saving = serializers.DecimalField(max_digits=18, decimal_places=4)
        unpriced_inbound_seconds = serializers.IntegerField()

    @report_schema("CallCostReport", CallCostRowSerializer, CallCostTotalSerializer)
    def get(self, request):
        return report_response(
            request, rows_of=call_costs_by_day, totals_of=call_cost_totals, row=self.CallCostRowSerializer,
            total=self.CallCostTotalSerializer,
        )  # fmt: skip
