"""WhatsApp's own figures: permissions, outbound answers, cost per connected minute (calls.kpis)."""

from collections.abc import Collection
from datetime import datetime
from decimal import Decimal

from django.db.models import (
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce

from calls.kpis.base import CallCost, WhatsAppFigures
from calls.kpis.queues import calls_of_period
from calls.models import Call
from compliance.models import AuditEvent, CallPermission
from messaging.models import Charge

# --- WhatsApp -----------------------------------------------------------------------------


def whatsapp_figures(
    *, since: datetime, until: datetime, business_number_ids: Collection[int] | None = None
) -> WhatsAppFigures:
    """Permissions, business-initiated calls and call costs of the numbers in the period: three queries."""
    audit = AuditEvent.objects.filter(at__gte=since, at__lt=until)
    calls = calls_of_period(since=since, until=until, business_number_ids=business_number_ids)
    if business_number_ids is not None:
        audit = audit.filter(permission__business_number_id__in=business_number_ids)
    Kind = AuditEvent.Kind
    of_permission = AuditEvent.objects.filter(permission_id=OuterRef("permission_id"), at__gte=OuterRef("at"))
    replies = of_permission.filter(kind__in=[Kind.GRANTED, Kind.REJECTED]).order_by("at", "pk")
    later_requests = of_permission.filter(kind=Kind.REQUEST_SENT, at__gt=OuterRef("at")).order_by("at", "pk")
    request = Q(kind=Kind.REQUEST_SENT)
    granted = (
        request
        & Q(first_reply=Kind.GRANTED)
        & (Q(next_request_at__isnull=True) | Q(first_reply_at__lt=F("next_request_at")))
    )
    granted_statuses = list(CallPermission.GRANTED_STATUSES)
    revoked = (
        Q(kind=Kind.REVOKED)
        | (
            Q(kind=Kind.META_ERROR, to_status=CallPermission.Status.REVOKED)
            & ~Q(from_status=CallPermission.Status.REVOKED)
        )
        | Q(kind=Kind.REJECTED, from_status__in=granted_statuses)
    )
    permissions = audit.annotate(
        first_reply=Subquery(replies.values("kind")[:1]),
        first_reply_at=Subquery(replies.values("at")[:1]),
        next_request_at=Subquery(later_requests.values("at")[:1]),
    ).aggregate(
        sent=Count("pk", filter=request),
        granted=Count("pk", filter=granted),
        revocations=Count("pk", filter=revoked),
    )
    outbound = (
        calls.filter(direction=Call.Direction.OUTBOUND)
        .exclude(status__in=[Call.Status.DIALING, Call.Status.RINGING])
        .aggregate(placed=Count("pk"), connected=Count("pk", filter=Q(connected_at__isnull=False)))
    )
    priced, unpriced = Q(amount__isnull=False), Q(amount__isnull=True)
    costs = (
        Charge.objects.filter(kind=Charge.Kind.CALL, reference__in=calls.values("wa_call_id"))
        .values("amount_currency")
        .annotate(
            seconds=Coalesce(Sum("duration_seconds", filter=priced), 0, output_field=IntegerField()),
            total=Sum("amount", filter=priced),
            unpriced_calls=Count("pk", filter=unpriced),
            unpriced_seconds=Coalesce(
                Sum("duration_seconds", filter=unpriced), 0, output_field=IntegerField()
            ),
        )
        .order_by("amount_currency")
    )
    return WhatsAppFigures(
        permission_requests_sent=permissions["sent"],
        permission_requests_granted=permissions["granted"],
        permission_revocations=permissions["revocations"],
        outbound_placed=outbound["placed"],
        outbound_connected=outbound["connected"],
        costs=[
            CallCost(
                currency=str(row["amount_currency"] or ""),
                connected_seconds=row["seconds"],
                amount=row["total"] if row["total"] is not None else Decimal(0),
                unpriced_calls=row["unpriced_calls"],
                unpriced_seconds=row["unpriced_seconds"],
            )
            for row in costs
        ],
    )
