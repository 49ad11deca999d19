import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from compliance.decisions import (
    REQUEST_BLOCKING_CODES,
    call_decide,
    decline_standing,
    permission_deadline,
    request_quota,
)
from compliance.models import AuditEvent, CallPermission, ConsentRecord
from core.events import event_publish
from messaging.models import Contact, RateCard, Template
from messaging.preferences import marketing_refuse_if_stopped
from messaging.services import contact_get_or_create, message_record_inbound, message_send_now
from whatsapp.client import (
    GraphClient,
    GraphRequest,
    call_button_message_request,
    call_permission_request_message,
    template_message_request,
)
from whatsapp.errors import GraphAPIError, ReEngagementRequired
from whatsapp.events import CallPermissionReply
from whatsapp.models import BusinessNumber

logger = logging.getLogger(__name__)

Status = CallPermission.Status

# --- Consent (recording notices) ------------------------------------------------------------


def consent_notice_started(
    *, call_id: int, contact_id: int, business_number_id: int, language: str, text: str, at: datetime
) -> ConsentRecord:
    """The recording notice began playing to a caller (once per call: a repeat returns the first)."""
    try:
        with transaction.atomic():
            return ConsentRecord.objects.create(
                call_id=call_id,
                contact_id=contact_id,
                business_number_id=business_number_id,
                kind=ConsentRecord.Kind.RECORDING_NOTICE,
                language=language,
                text=text,
                started_at=at,
            )
    except IntegrityError:
        return ConsentRecord.objects.get(call_id=call_id, kind=ConsentRecord.Kind.RECORDING_NOTICE)


def consent_notice_completed(*, call_id: int, at: datetime) -> bool:
    """The caller heard the notice to its end; False if there was no notice or it was marked already."""
    return bool(
        ConsentRecord.objects.filter(
            call_id=call_id, kind=ConsentRecord.Kind.RECORDING_NOTICE, completed_at__isnull=True
        ).update(completed_at=at)
    )


# --- Call permissions: every change locks the pair's row and writes an AuditEvent with it --------

# Called after commit with the ids of permissions that stopped allowing calls (revoked or expired).
_lost_listeners: list[Callable[[list[int]], None]] = []


def permission_lost_listener_register(listener: Callable[[list[int]], None]) -> None:
    if listener not in _lost_listeners:
        _lost_listeners.append(listener)


def _tell_lost_on_commit(permission_ids: list[int]) -> None:
    if permission_ids:
        for listener in _lost_listeners:
            transaction.on_commit(lambda listener=listener: listener(list(permission_ids)))


def _locked_permission(*, business_number_id: int, contact_id: int) -> CallPermission:
    """The pair's permission row (created on first use), locked until the transaction ends."""
    pair = CallPermission.objects.filter(business_number_id=business_number_id, contact_id=contact_id)
    permission = pair.select_for_update().first()
    if permission is not None:
        return permission
    try:
        with transaction.atomic():
            CallPermission.objects.create(business_number_id=business_number_id, contact_id=contact_id)
    except IntegrityError:
        pass  # created by a concurrent first use: lock that one
    return pair.select_for_update().get()


def _audit(permission: CallPermission, kind: str, *, at: datetime, previous_status: str = "",
           detail: str = "", actor_id: int | None = None, **data: Any) -> AuditEvent:  # fmt: skip
    if previous_status and previous_status != permission.status:
        event_publish(
            "permission.changed",
            business_number_id=permission.business_number_id,
            data={
                "contact_id": permission.contact_id,
                "from_status": previous_status,
                "status": permission.status,
                "expires_at": permission.meta_expires_at,
            },
        )
    return AuditEvent.objects.create(
        permission=permission,
        kind=kind,
        at=at,
        from_status=previous_status or permission.status,
        to_status=permission.status,
        detail=detail[:255],
        actor_id=actor_id,
        data={
            key: value.isoformat() if isinstance(value, datetime) else value for key, value in data.items()
        },
    )


def _save(permission: CallPermission, at: datetime, *fields: str) -> None:
    permission.deadline_at = permission_deadline(
        status=permission.status,
        granted_at=permission.granted_at,
        meta_expires_at=permission.meta_expires_at,
        last_connected_at=permission.last_connected_at,
    )
    permission.save(update_fields=[*fields, "deadline_at", "updated_at"])


@transaction.atomic
def permission_record_reply(event: CallPermissionReply) -> CallPermission | None:
    """The customer answered a permission request, or granted one automatically by calling in.

    A reply older than the last reply applied (webhooks can arrive out of order) changes nothing.
    Accepting resets the unanswered-call count and sets the deadline; declining ends any permission.
    """
    number = BusinessNumber.objects.filter(phone_number_id=event.phone_number_id).first()
    if number is None:
        logger.warning("call permission reply for unknown number %s", event.phone_number_id)
        return None
    contact = contact_get_or_create(wa_id=event.from_number, name=event.contact_name)
    at = event.occurred_at or timezone.now()
    if event.response_source != "automatic":  # the customer tapped an answer: a message of theirs
        answer = "Allowed calls" if event.is_accepted else "Declined calls"
        message_record_inbound(
            business_number=number, contact=contact, wa_message_id=event.message_id,
            message_type="interactive", text=f"{answer} (call permission request)", raw=event.raw, at=at,
            opens_conversation=False,  # the answer needs nobody; an open conversation shows it
        )  # fmt: skip
    permission = _locked_permission(business_number_id=number.pk, contact_id=contact.pk)
    # Compared with Meta's times of earlier replies only: our own changes carry our clock, and
    # Meta's timestamps have whole seconds.
    last_reply_at = permission.audit_events.filter(
        kind__in=[AuditEvent.Kind.GRANTED, AuditEvent.Kind.REJECTED]
    ).aggregate(last=Max("at"))["last"]
    if last_reply_at and at < last_reply_at:
        return permission
    previous = permission.status
    permission.status_changed_at = at
    if event.is_accepted:
        permission.status = Status.PERMANENT if event.is_permanent else Status.TEMPORARY
        permission.source = (
            CallPermission.Source.CALLBACK
            if event.response_source == "automatic"
            else CallPermission.Source.REQUEST_REPLY
        )
        permission.granted_at = at
        permission.meta_expires_at = None if event.is_permanent else event.expires_at
        permission.consecutive_unanswered = 0
        kind = AuditEvent.Kind.GRANTED
    else:
        permission.status, permission.meta_expires_at = Status.REJECTED, None
        kind = AuditEvent.Kind.REJECTED
    _save(permission, at, "status", "status_changed_at", "source", "granted_at", "meta_expires_at",
          "consecutive_unanswered")  # fmt: skip
    _audit(
        permission,
        kind,
        at=at,
        previous_status=previous,
        detail=f"{event.response} ({event.response_source or 'user_action'})",
        is_permanent=bool(event.is_permanent),
        meta_expires_at=event.expires_at,
        message_id=event.message_id,
        context_id=event.context_id,
    )
    return permission


def permission_request_send(
    *, business_number: BusinessNumber, contact: Contact, requested_by_id: int | None = None,
    body_text: str = "", graph: GraphClient | None = None,
) -> AuditEvent:  # fmt: skip
    """Send the customer a call permission request (an interactive message), within the limits.

    Refused with a ValidationError naming the rule when the number may not ask (sanctioned region,
    calling off, business calls impossible from the number or to the customer), the customer has
    already granted permission, declined the last request and not written or called since, or the
    pair's request quota is used up. Meta's own refusal of the
    quota (138009) is recorded and blocks requests for 24 h. The pair's row stays locked while
    Meta is asked, so that two agents cannot both spend the last request.
    """
    decision = call_decide(business_number=business_number, contact=contact)
    blocking = [
        refusal
        for refusal in decision.refusals
        if refusal.code in REQUEST_BLOCKING_CODES | {"sanctioned_region", "calling_disabled"}
    ]
    if blocking:
        raise ValidationError(blocking[0].reason, code=blocking[0].code)
    refusal = None
    with transaction.atomic():
        permission = _locked_permission(business_number_id=business_number.pk, contact_id=contact.pk)
        now = timezone.now()
        if permission.is_granted and not (permission.deadline_at and permission.deadline_at <= now):
            raise ValidationError("The customer has already given permission to be called.", code="granted")
        declined = decline_standing(permission=permission)
        if declined:
            raise ValidationError(f'{declined} Send a "Call us" button instead.', code="declined")
        quota = request_quota(permission=permission, at=now)
        if not quota.is_available:
            raise ValidationError(quota.reason, code="request_quota")
        try:
            message_id = _send_outside_or_inside_the_window(
                graph,
                call_permission_request_message(
                    phone_number_id=business_number.phone_number_id, to=contact.wa_id, body_text=body_text
                ),
                template=settings.CALL_PERMISSION_TEMPLATE,
                business_number=business_number,
                contact=contact,
                text=body_text or "Call permission request",
            )
        except GraphAPIError as error:
            if error.code != 138009:
                raise
            # Kept (the transaction commits), then refused.
            permission.requests_blocked_until = now + timedelta(hours=24)
            _save(permission, now, "requests_blocked_until")
            _audit(permission, AuditEvent.Kind.META_ERROR, at=now, detail=str(error), code=error.code)
            refusal = ValidationError(error.meaning, code="request_quota")
        else:
            previous = permission.status
            if not permission.is_granted:
                permission.status, permission.status_changed_at = Status.REQUESTED, now
            permission.owner_id = requested_by_id or permission.owner_id
            _save(permission, now, "status", "status_changed_at", "owner")
            sent = _audit(
                permission,
                AuditEvent.Kind.REQUEST_SENT,
                at=now,
                previous_status=previous,
                actor_id=requested_by_id,
                message_id=message_id,
            )
    if refusal is not None:
        raise refusal
    return sent


def call_button_send(
    *, business_number: BusinessNumber, contact: Contact, graph: GraphClient | None = None
) -> str:
    """The fallback that always works where WhatsApp does: a "Call us" button message, so that the
    customer calls in (free). Refused in sanctioned regions and while calling is off."""
    decision = call_decide(business_number=business_number, contact=contact)
    if decision.fallback is not None and not decision.fallback.kind:
        raise ValidationError(decision.fallback.reason, code="no_fallback")
    return _send_outside_or_inside_the_window(
        graph,
        call_button_message_request(
            phone_number_id=business_number.phone_number_id,
            to=contact.wa_id,
            body_text="We tried to reach you. Tap below to call us on WhatsApp when it suits you.",
            display_text="Call us",
        ),
        template=settings.CALL_BUTTON_TEMPLATE,
        business_number=business_number,
        contact=contact,
        text="Call us button",
    )


def _send_outside_or_inside_the_window(
    graph: GraphClient | None, request: GraphRequest, *, template: str, business_number: BusinessNumber,
    contact: Contact, text: str,
) -> str:  # fmt: skip
    """Send a free-form interactive message; once the customer's 24-hour window has closed (Meta:
    131047) only a template may go, so send the configured one, if there is one: a marketing one
    not to a customer who stopped marketing messages (``marketing_stopped``, before sending). Each
    message is recorded in the customer's thread before it is sent (``text`` describes it there)."""
    with graph or GraphClient() as client:
        try:
            message = message_send_now(
                business_number=business_number, contact=contact, request=request, text=text, graph=client
            )
        except ReEngagementRequired:
            if not template:
                raise ValidationError(
                    "The customer has not written in the last 24 hours, so only an approved message template "
                    "can be sent, and none is configured for this.",
                    code="window_closed",
                ) from None
            _refuse_marketing_to_who_stopped_it(template, business_number=business_number, contact=contact)
            fallback = template_message_request(
                phone_number_id=business_number.phone_number_id,
                to=contact.wa_id,
                name=template,
                language=settings.OUTREACH_TEMPLATE_LANGUAGE,
            )
            message = message_send_now(
                business_number=business_number, contact=contact, request=fallback,
                text=f"{text} (template {template})", graph=client,
            )  # fmt: skip
    return message.wa_message_id


def _refuse_marketing_to_who_stopped_it(
    name: str, *, business_number: BusinessNumber, contact: Contact
) -> None:
    """A template configured by name is marketing when the account's approved template of that name
    says so (as synced from Meta); Meta would fail it with 131050 for a customer who stopped them."""
    is_marketing = Template.objects.filter(
        waba_id=business_number.waba_id,
        status=Template.Status.APPROVED,
        name=name,
        language=settings.OUTREACH_TEMPLATE_LANGUAGE,
        category=RateCard.Category.MARKETING,
    ).exists()
    if is_marketing:
        marketing_refuse_if_stopped(business_number_id=business_number.pk, contact_id=contact.pk)


FALLBACK_KINDS = ("permission_request", "call_button")


def fallback_send(
    *, kind: str, business_number: BusinessNumber, contact: Contact, requested_by_id: int | None = None
) -> str:
    """Send the fallback a refused call offered (`permission_request` or `call_button`): what was
    sent, as a sentence. `contact` may be unsaved (it is saved to send). Refusals, Meta's included,
    are ValidationErrors naming the reason (Meta's as what it means for the agent, `graph_error`;
    its code and words are logged)."""
    if kind not in FALLBACK_KINDS:
        raise ValidationError("'kind' must be permission_request or call_button.", code="invalid_fallback")
    if contact.pk is None:  # a customer first reached now: the message joins their thread
        contact = contact_get_or_create(wa_id=contact.wa_id)
    try:
        if kind == "permission_request":
            permission_request_send(
                business_number=business_number, contact=contact, requested_by_id=requested_by_id
            )
            return "Permission request sent."
        call_button_send(business_number=business_number, contact=contact)
        return '"Call us" button sent.'
    except GraphAPIError as error:  # GraphTransportError included
        logger.warning("WhatsApp did not take the %s to contact %s: %s", kind, contact.pk, error)
        raise ValidationError(error.meaning, code="graph_error") from error


@transaction.atomic
def permission_record_call_placed(
    *, business_number_id: int, contact_id: int, at: datetime, actor_id: int | None = None
) -> None:
    """A business call to the customer was placed (the caller becomes the permission's owner)."""
    permission = _locked_permission(business_number_id=business_number_id, contact_id=contact_id)
    if actor_id:
        permission.owner_id = actor_id
        permission.save(update_fields=["owner", "updated_at"])
    _audit(permission, AuditEvent.Kind.CALL_PLACED, at=at, actor_id=actor_id)


@transaction.atomic
def permission_record_call_outcome(
    *, business_number_id: int, contact_id: int, is_connected: bool, at: datetime, detail: str = ""
) -> CallPermission:
    """How a business call ended. Connected: the unanswered count starts again, the request limits
    reset and the deadline moves on. Unanswered or declined: a strike; the MAX_CONSECUTIVE_UNANSWERED-th
    in a row revokes the permission (as Meta does) and the permission's owner is told."""
    permission = _locked_permission(business_number_id=business_number_id, contact_id=contact_id)
    if is_connected:
        permission.consecutive_unanswered = 0
        permission.last_connected_at = permission.requests_reset_at = at
        _save(permission, at, "consecutive_unanswered", "last_connected_at", "requests_reset_at")
        _audit(permission, AuditEvent.Kind.CALL_CONNECTED, at=at, detail=detail)
        return permission
    permission.consecutive_unanswered += 1
    _save(permission, at, "consecutive_unanswered")
    _audit(permission, AuditEvent.Kind.STRIKE, at=at, detail=detail, count=permission.consecutive_unanswered)
    if permission.consecutive_unanswered >= settings.MAX_CONSECUTIVE_UNANSWERED and permission.is_granted:
        previous = permission.status
        permission.status, permission.status_changed_at = Status.REVOKED, at
        _save(permission, at, "status", "status_changed_at")
        _audit(
            permission,
            AuditEvent.Kind.REVOKED,
            at=at,
            previous_status=previous,
            detail=f"{permission.consecutive_unanswered} business calls in a row unanswered or declined",
        )
        _tell_lost_on_commit([permission.pk])
    return permission


def permission_record_inbound_connected(*, business_number_id: int, contact_id: int, at: datetime) -> bool:
    """The customer's own call was answered: the pair's permission request limits start again
    (Meta: any connected call resets them). Nothing to do for a pair with no permission row."""
    with transaction.atomic():
        permission = (
            CallPermission.objects.select_for_update()
            .filter(business_number_id=business_number_id, contact_id=contact_id)
            .first()
        )
        if permission is None:
            return False
        permission.requests_reset_at = at
        permission.save(update_fields=["requests_reset_at", "updated_at"])
        _audit(permission, AuditEvent.Kind.REQUESTS_RESET, at=at, detail="the customer's call was answered")
    return True


@transaction.atomic
def permission_reconcile_meta_error(
    *, business_number_id: int, contact_id: int, code: int, message: str = "", error_data: dict | None = None
) -> CallPermission:
    """Meta refused a call or a request for a reason our state should have known: bring it in line.

    138006 (no approved permission): a permission we thought granted is revoked. 138012 (daily
    call limit): no call until the time Meta names (24 h if it names none). 138009 (request limit):
    no request for 24 h.
    """
    now = timezone.now()
    permission = _locked_permission(business_number_id=business_number_id, contact_id=contact_id)
    previous = permission.status
    if code == 138006 and permission.status in {*CallPermission.GRANTED_STATUSES, Status.REQUESTED}:
        permission.status, permission.status_changed_at = Status.REVOKED, now
        _save(permission, now, "status", "status_changed_at")
        _tell_lost_on_commit([permission.pk])
    elif code == 138012:
        allowed_at = (error_data or {}).get("next_call_allowed_at")
        permission.next_call_allowed_at = (
            datetime.fromtimestamp(allowed_at, UTC)
            if isinstance(allowed_at, int)
            else now + timedelta(hours=24)
        )
        _save(permission, now, "next_call_allowed_at")
    elif code == 138009:
        permission.requests_blocked_until = now + timedelta(hours=24)
        _save(permission, now, "requests_blocked_until")
    _audit(permission, AuditEvent.Kind.META_ERROR, at=now, previous_status=previous,
           detail=f"{code} {message}".strip(), code=code)  # fmt: skip
    return permission


def permissions_expire_due(*, batch_size: int = 500, at: datetime | None = None) -> int:
    """Mark every temporary permission past its deadline `expired`, in batches (a handful of
    queries per batch however many there are), with an audit row each and their owners told.

    Safe to run twice at once: each batch claims its rows with SELECT … FOR UPDATE SKIP LOCKED on
    PostgreSQL (SQLite runs one writer at a time) and the UPDATE repeats the condition.
    """
    expired = 0
    while True:
        now = at or timezone.now()
        with transaction.atomic():
            due = CallPermission.objects.filter(status=Status.TEMPORARY, deadline_at__lte=now).order_by("pk")
            if connection.features.has_select_for_update_skip_locked:
                due = due.select_for_update(skip_locked=True)
            rows = list(due.values_list("pk", "deadline_at")[:batch_size])
            if not rows:
                return expired
            CallPermission.objects.filter(
                pk__in=[pk for pk, _ in rows], status=Status.TEMPORARY, deadline_at__lte=now
            ).update(status=Status.EXPIRED, status_changed_at=now, updated_at=now)
            AuditEvent.objects.bulk_create(
                AuditEvent(
                    permission_id=pk,
                    kind=AuditEvent.Kind.EXPIRED,
                    at=now,
                    from_status=Status.TEMPORARY,
                    to_status=Status.EXPIRED,
                    detail="deadline passed",
                    data={"deadline_at": deadline.isoformat()},
                )
                for pk, deadline in rows
            )
            _tell_lost_on_commit([pk for pk, _ in rows])
        expired += len(rows)
        if len(rows) < batch_size:
            return expired
