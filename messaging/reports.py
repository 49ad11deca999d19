"""The billing reports' period: from the query of the costs page and of the API's reports."""

import datetime

from django.utils import timezone
from rest_framework import serializers

MAX_REPORT_DAYS = 366
DEFAULT_REPORT_DAYS = 30


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
