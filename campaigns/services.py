"""Campaigns: screening a list, then sending one template to it from one number, paced under the
number's messaging throughput (WHATSAPP_API.md §10.1), pausable and resumable after a restart.

A campaign moves DRAFT → SENDING ⇄ PAUSED → COMPLETED, or to CANCELLED from any of the first three;
each move is one conditional UPDATE. Its sender claims recipients (`claimed_until`) so two senders
never send one recipient twice, and a sender that died leaves its recipients to the next once the
claim lapses. Each message goes through messaging's send path (recorded first under a key of the
recipient, so a retaken recipient gets the same message, sent once).
"""

import csv
import datetime
import io
import logging
import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from calls.models import Call
from campaigns.models import Campaign, OptIn, Recipient
from campaigns.planning import CapacityPlan, campaign_plan
from core.realtime import broadcast_on_commit
from messaging.models import Contact, MarketingPreference, Message, RateCard, Template
from messaging.preferences import MARKETING_STOPPED, marketing_refused_by_meta
from messaging.services import (
    contact_get_or_create,
    country_of_wa_id,
    customer_wa_id_from_text,
    message_send_claim,
    message_send_failed,
    message_send_release,
    message_send_template,
    message_sent,
)
from whatsapp.client import GraphClient
from whatsapp.errors import GraphAPIError, GraphTransportError
from whatsapp.models import BusinessNumber

logger = logging.getLogger(__name__)

Exclusion = Recipient.Exclusion
Status = Campaign.Status
THROTTLED = 130429  # Meta's "too many messages for the number's throughput" (§10.1)
PAIR_THROTTLED = 131056  # too many to one customer: that customer later, the others now
MAX_RECIPIENTS = 100_000
MAX_LISTED_LENGTH = 64  # Recipient.listed_as
CLAIM_LEASE = datetime.timedelta(minutes=2)  # a recipient claimed this long ago and not sent is taken again
SENDER_LEASE = datetime.timedelta(seconds=90)  # a sender silent this long is dead: the sweep starts another
SEND_LEASE = datetime.timedelta(minutes=1)  # messaging's claim of the message itself
PHONE_COLUMNS = ("phone", "wa_id", "phone_number", "number", "mobile")


def campaign_progress_changed(campaign_id: int) -> None:
    """Tell the campaign's page (channel-layer group `campaign.<pk>`) that its progress or state
    moved, once this commits: it reads `campaign_progress` again."""
    broadcast_on_commit(f"campaign.{campaign_id}", {"type": "campaign.progress", "campaign_id": campaign_id})


# --- Lists: a CSV upload, a saved filter of contacts ------------------------------------------------


def lines_from_csv(content: bytes | str) -> list[str]:
    """The phone numbers of a CSV file as listed: the `phone` (or `wa_id`, `phone_number`, `number`,
    `mobile`) column when the first row names one, else the first column (a first row with no digit
    in its first cell is a header, skipped). ValidationError `csv` when it is not a readable CSV."""
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("The file is not UTF-8 text: save it as CSV (UTF-8).", code="csv") from None
    try:
        rows = [row for row in csv.reader(io.StringIO(content)) if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise ValidationError(f"The file is not a readable CSV: {error}.", code="csv") from None
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((header.index(name) for name in PHONE_COLUMNS if name in header), None)
    if column is not None:
        rows = rows[1:]
    else:
        column = 0
        if not any(character.isdigit() for character in rows[0][0]):
            rows = rows[1:]
    return [row[column].strip() if column < len(row) else "" for row in rows]


# --- Creating: the list screened, each exclusion with its reason -------------------------------------


@dataclass(frozen=True)
class Screened:
    listed_as: str
    wa_id: str = ""
    country: str = ""
    contact_id: int | None = None
    exclusion: str = ""
    detail: str = ""


def campaign_rate_cap() -> Decimal:
    """The fastest a campaign may send: the number's messaging throughput (WHATSAPP_API.md §10.1)."""
    return Decimal(settings.WHATSAPP_MESSAGES_PER_SECOND)


@transaction.atomic
def campaign_create(
    *,
    name: str,
    business_number: BusinessNumber,
    template: Template,
    lines: Iterable[str],
    created_by=None,
    parameters: list[str] | None = None,
    send_rate_per_second: Decimal | None = None,
    expected_tap_rate: Decimal | None = None,
    expected_call_seconds: int | None = None,
    expected_tap_delay_seconds: int | None = None,
    target_service_level: Decimal | None = None,
    target_answer_seconds: int | None = None,
    agents_on_duty: int | None = None,
) -> Campaign:
    """A draft campaign of `template` from `business_number` to `lines` (phone numbers as listed: CSV
    cells, a filter's contacts, API items), each screened: excluded, with its reason, when it is not
    a valid mobile number, listed before, in a sanctioned country, a customer who stopped the
    number's marketing messages (a marketing template), or one who never agreed to hear from the
    number (no OptIn, never wrote or called it). The `expected_*`, `target_*` and `agents_on_duty`
    guesses feed the capacity plan (None: the model's default). ValidationError (nothing created)
    for a template that is not an approved one of the number's account, a rate over the number's
    throughput, an empty or too long list."""
    given = {
        "expected_tap_rate": expected_tap_rate,
        "expected_call_seconds": expected_call_seconds,
        "expected_tap_delay_seconds": expected_tap_delay_seconds,
        "target_service_level": target_service_level,
        "target_answer_seconds": target_answer_seconds,
        "agents_on_duty": agents_on_duty,
    }
    guesses = {name: value for name, value in given.items() if value is not None}  # None: the model's default
    if not name.strip():
        raise ValidationError("A campaign needs a name.", code="name")
    if template.waba_id != business_number.waba_id or template.status != Template.Status.APPROVED:
        raise ValidationError(
            f"{template} is not an approved template of this number's account.", code="template"
        )
    if send_rate_per_second is not None and not (0 < send_rate_per_second <= campaign_rate_cap()):
        raise ValidationError(
            f"The pace is more than 0 and at most the number's throughput, {campaign_rate_cap()} messages "
            "a second.",
            code="send_rate",
        )
    listed = [str(line).strip() for line in lines]
    listed = [line for line in listed if line]
    if not listed:
        raise ValidationError("The list has no phone numbers.", code="empty_list")
    if len(listed) > MAX_RECIPIENTS:
        raise ValidationError(f"A campaign goes to {MAX_RECIPIENTS} people at most.", code="too_many")
    campaign = Campaign(
        name=name.strip()[:200], business_number=business_number, template=template, created_by=created_by,
        parameters=[str(value) for value in parameters or []], send_rate_per_second=send_rate_per_second,
        **guesses,
    )  # fmt: skip
    campaign.full_clean(exclude=["business_number", "template", "created_by", "plan"])
    campaign.save()
    campaign.call_button_payload = f"campaign-{campaign.pk}"
    campaign.save(update_fields=["call_button_payload"])
    screened = recipients_screen(business_number=business_number, template=template, lines=listed)
    Recipient.objects.bulk_create(
        [
            Recipient(
                campaign=campaign,
                listed_as=line.listed_as[:MAX_LISTED_LENGTH],
                wa_id=line.wa_id,
                country=line.country,
                contact_id=line.contact_id,
                exclusion=line.exclusion,
                exclusion_detail=line.detail[:300],
                status=Recipient.Status.EXCLUDED if line.exclusion else Recipient.Status.PENDING,
            )
            for line in screened
        ],
        batch_size=2000,
    )
    return campaign


def recipients_screen(
    *, business_number: BusinessNumber, template: Template, lines: list[str]
) -> list[Screened]:
    """Each line as listed, with its WhatsApp id and country, or why it is left out (the first reason
    that applies: invalid number, duplicate, sanctioned country, marketing stopped, no opt-in). A few
    queries whatever the list's length."""
    first: list[Screened] = []
    seen: set[str] = set()
    for line in lines:
        wa_id, problem = _wa_id_of(line, business_number=business_number)
        if problem:
            first.append(Screened(line, exclusion=Exclusion.INVALID_NUMBER, detail=problem))
            continue
        country = country_of_wa_id(wa_id)
        if wa_id in seen:
            first.append(Screened(line, wa_id, country, exclusion=Exclusion.DUPLICATE,
                                  detail="Listed earlier in this list: sent once."))  # fmt: skip
            continue
        seen.add(wa_id)
        first.append(Screened(line, wa_id, country))
    contacts = dict(Contact.objects.filter(wa_id__in=seen).values_list("wa_id", "pk"))
    contact_ids = list(contacts.values())
    stopped: dict[int, datetime.datetime] = {}
    if template.category == RateCard.Category.MARKETING:
        stopped = dict(
            MarketingPreference.objects.filter(
                business_number=business_number, contact_id__in=contact_ids,
                status=MarketingPreference.Status.STOPPED,
            ).values_list("contact_id", "since")
        )  # fmt: skip
    agreed = opted_in_contact_ids(business_number_id=business_number.pk, contact_ids=contact_ids)
    screened = []
    for line in first:
        contact_id = contacts.get(line.wa_id)
        if line.exclusion or not line.wa_id:
            screened.append(Screened(**{**line.__dict__, "contact_id": contact_id}))
            continue
        exclusion, detail = "", ""
        if line.country in settings.SANCTIONED_COUNTRIES:
            exclusion = Exclusion.SANCTIONED_COUNTRY
            detail = f"WhatsApp is not offered in {line.country}, a sanctioned region."
        elif contact_id in stopped:
            exclusion = Exclusion.MARKETING_STOPPED
            detail = f"Stopped marketing messages from this number on {stopped[contact_id]:%Y-%m-%d}."
        elif contact_id not in agreed:
            exclusion = Exclusion.NO_OPT_IN
            detail = "Never wrote to or called this number, and no opt-in is recorded for it."
        screened.append(Screened(line.listed_as, line.wa_id, line.country, contact_id, exclusion, detail))
    return screened


def _wa_id_of(line: str, *, business_number: BusinessNumber) -> tuple[str, str]:
    """(WhatsApp id, "") of a line, or ("", why it is not a number WhatsApp can reach)."""
    if len(line) > MAX_LISTED_LENGTH:
        return "", "Too long to be a phone number."
    try:
        wa_id = customer_wa_id_from_text(line, business_number=business_number)
    except ValidationError:
        return "", "Not a phone number: write it as +44 7700 900123."
    # A possible number phonenumbers does not know as valid (a new range, a test range) is kept: Meta
    # says whether it is on WhatsApp (131026). One it knows as a landline cannot be (§10.4).
    number = phonenumbers.parse(f"+{wa_id}")
    is_landline = phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.FIXED_LINE
    if phonenumbers.is_valid_number(number) and is_landline:
        return "", "A landline: it cannot be on WhatsApp (WHATSAPP_API.md §10.4)."
    return wa_id, ""


def opted_in_contact_ids(*, business_number_id: int, contact_ids: list[int]) -> set[int]:
    """Of `contact_ids`, those who agreed to hear from the number: an OptIn recorded, or they wrote to
    it or called it (they started a conversation with the business)."""
    if not contact_ids:
        return set()
    recorded = OptIn.objects.filter(business_number_id=business_number_id, contact_id__in=contact_ids)
    wrote = Message.objects.filter(
        business_number_id=business_number_id, contact_id__in=contact_ids, direction=Message.Direction.INBOUND
    )
    called = Call.objects.filter(
        business_number_id=business_number_id, contact_id__in=contact_ids, direction=Call.Direction.INBOUND
    )
    return (
        set(recorded.values_list("contact_id", flat=True))
        | set(wrote.values_list("contact_id", flat=True).distinct())
        | set(called.values_list("contact_id", flat=True).distinct())
    )


@transaction.atomic
def opt_ins_record(
    *, business_number: BusinessNumber, lines: list[str], at: datetime.datetime, source: str,
    detail: str = "", recorded_by=None,
) -> tuple[int, list[str]]:  # fmt: skip
    """Record the agreement of each customer listed (numbers read like a campaign's lines): how many
    are on record now, and the lines that are not phone numbers (nothing recorded for those)."""
    invalid, wa_ids = [], set()
    for line in lines:
        wa_id, problem = _wa_id_of(line.strip(), business_number=business_number)
        if problem:
            invalid.append(line)
        else:
            wa_ids.add(wa_id)
    for wa_id in sorted(wa_ids):
        opt_in_record(business_number=business_number, wa_id=wa_id, at=at, source=source, detail=detail,
                      recorded_by=recorded_by)  # fmt: skip
    return len(wa_ids), invalid


def opt_in_record(
    *, business_number: BusinessNumber, wa_id: str, at: datetime.datetime, source: str, detail: str = "",
    recorded_by=None,
) -> OptIn:  # fmt: skip
    """Record that the customer agreed to hear from the number (kept as first recorded if already)."""
    contact = contact_get_or_create(wa_id=wa_id)
    opt_in, _ = OptIn.objects.get_or_create(
        business_number=business_number, contact=contact,
        defaults={"at": at, "source": source, "detail": detail[:300], "recorded_by": recorded_by},
    )  # fmt: skip
    return opt_in


# --- State: start, pause, resume, cancel (one conditional UPDATE each) ------------------------------


def _move(campaign_id: int, *, from_statuses: Iterable[str], to: str, verb: str, **changes) -> None:
    moved = Campaign.objects.filter(pk=campaign_id, status__in=list(from_statuses)).update(
        status=to, updated_at=timezone.now(), **changes
    )
    if moved != 1:
        current = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
        raise ValidationError(
            f"A campaign that is {current or 'gone'} cannot be {verb}.", code="campaign_status"
        )
    campaign_progress_changed(campaign_id)


@transaction.atomic
def campaign_start(*, campaign_id: int, send_rate: Decimal | None = None) -> None:
    """Plan a draft campaign and start sending it (its sender is queued once this commits).

    Its pace is `send_rate` when the operator gives one (or gave one when creating it), else the
    capacity plan's: the fastest that keeps the number's call cap and the queue's service level
    (campaigns.planning); the plan is kept on the campaign either way. ValidationError `plan` when
    no pace keeps them and none is given, `send_rate` for a pace over the number's throughput,
    `campaign_status` when it is not a draft."""
    from campaigns.tasks import send_campaign
    from core.jobs import enqueue_on_commit

    campaign = Campaign.objects.select_related("business_number", "template").get(pk=campaign_id)
    chosen = send_rate if send_rate is not None else campaign.send_rate_per_second
    if chosen is not None and not (0 < chosen <= campaign_rate_cap()):
        raise ValidationError(
            f"The pace is more than 0 and at most the number's throughput, {campaign_rate_cap()} messages "
            "a second.",
            code="send_rate",
        )
    plan = campaign_plan(campaign)
    if chosen is None and not plan.is_feasible:
        raise ValidationError(f"{' '.join(plan.lines)} Give the pace yourself to send anyway.", code="plan")
    rate = chosen if chosen is not None else _rate_of(plan)
    _plan_keep(campaign_id, plan, rate, source="operator" if chosen is not None else "plan")
    now = timezone.now()
    _move(campaign_id, from_statuses=[Status.DRAFT], to=Status.SENDING, verb="started", started_at=now)
    enqueue_on_commit(send_campaign, campaign_id=campaign_id)


def campaign_replan(*, campaign_id: int) -> bool:
    """While it sends, plan a campaign again once its own tap rate and call length are measured
    (campaigns.planning.measured_rates): its pace follows the new plan, unless the operator chose
    the pace, or no pace meets the plan (it keeps the one it has). Whether the pace changed."""
    campaign = Campaign.objects.select_related("business_number", "template").get(pk=campaign_id)
    if campaign.status != Status.SENDING or campaign.plan.get("rate_source") != "plan":
        return False
    plan = campaign_plan(campaign)
    if not (plan.inputs.rates_measured and plan.is_feasible):
        return False
    rate = _rate_of(plan)
    _plan_keep(campaign_id, plan, rate, source="plan")
    return rate != campaign.send_rate_per_second


def _rate_of(plan: CapacityPlan) -> Decimal:
    return Decimal(f"{plan.recommended_send_rate:.3f}")


def _plan_keep(campaign_id: int, plan: CapacityPlan, rate: Decimal, *, source: str) -> None:
    document = {**plan.as_json(), "planned_at": timezone.now().isoformat(), "rate_source": source}
    Campaign.objects.filter(pk=campaign_id).update(
        plan=document, send_rate_per_second=rate, updated_at=timezone.now()
    )


@transaction.atomic
def campaign_pause(*, campaign_id: int) -> None:
    """Stop sending: the sender stops before its next message (none is sent after this commits)."""
    _move(
        campaign_id, from_statuses=[Status.SENDING], to=Status.PAUSED, verb="paused", paused_at=timezone.now()
    )


@transaction.atomic
def campaign_resume(*, campaign_id: int) -> None:
    """Send again from where a paused campaign stopped."""
    from campaigns.tasks import send_campaign
    from core.jobs import enqueue_on_commit

    _move(campaign_id, from_statuses=[Status.PAUSED], to=Status.SENDING, verb="resumed", paused_at=None)
    enqueue_on_commit(send_campaign, campaign_id=campaign_id)


@transaction.atomic
def campaign_cancel(*, campaign_id: int) -> None:
    """Stop for good: those not sent yet never are (they stay `pending`)."""
    _move(
        campaign_id, from_statuses=[Status.DRAFT, Status.SENDING, Status.PAUSED], to=Status.CANCELLED,
        verb="cancelled", finished_at=timezone.now(),
    )  # fmt: skip


# What an operator can do to a campaign, by name (the pages and the API); starting is planned.
ACTIONS = {
    "start": campaign_start,
    "pause": campaign_pause,
    "resume": campaign_resume,
    "cancel": campaign_cancel,
}


def campaign_complete_if_done(*, campaign_id: int) -> bool:
    """A sending campaign with nobody left to send to is completed: whether it is now."""
    if Recipient.objects.filter(campaign_id=campaign_id, status=Recipient.Status.PENDING).exists():
        return False
    now = timezone.now()
    completed = Campaign.objects.filter(pk=campaign_id, status=Status.SENDING).update(
        status=Status.COMPLETED, finished_at=now, updated_at=now, sender_token="", sender_until=None
    )
    if completed:
        campaign_progress_changed(campaign_id)
    return bool(completed)


# --- Sending ------------------------------------------------------------------------------------


def campaign_rate(campaign: Campaign) -> Decimal:
    """The pace the sender keeps: the campaign's own, never above the number's throughput."""
    cap = campaign_rate_cap()
    return min(campaign.send_rate_per_second or cap, cap)


def campaign_pace(campaign: Campaign) -> float:
    """The pace the sender keeps now: its rate, within an equal share of the number's throughput
    among the number's campaigns sending at once (together they never go over it)."""
    sending = Campaign.objects.filter(business_number_id=campaign.business_number_id, status=Status.SENDING)
    share = campaign_rate_cap() / max(1, sending.count())
    return float(min(campaign_rate(campaign), share))


def campaign_sender_take(*, campaign_id: int, token: str) -> bool:
    """Become (or stay) the campaign's one sender for SENDER_LEASE: whether this sender is it. Another
    that is alive keeps it; one silent longer than the lease (it died) is replaced."""
    now = timezone.now()
    return bool(
        Campaign.objects.filter(pk=campaign_id, status=Status.SENDING)
        .filter(Q(sender_token=token) | Q(sender_until__isnull=True) | Q(sender_until__lt=now))
        .update(sender_token=token, sender_until=now + SENDER_LEASE)
    )


def campaign_sender_leave(*, campaign_id: int, token: str) -> None:
    Campaign.objects.filter(pk=campaign_id, sender_token=token).update(sender_token="", sender_until=None)


def recipients_claim(*, campaign_id: int, limit: int) -> list[int]:
    """Take up to `limit` recipients waiting to be sent, in list order, for CLAIM_LEASE: those another
    sender holds are skipped (never waited for), those whose claim lapsed are taken again."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Recipient.objects.select_for_update(skip_locked=True)
            .filter(campaign_id=campaign_id, status=Recipient.Status.PENDING)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        Recipient.objects.filter(pk__in=ids).update(claimed_until=now + CLAIM_LEASE)
    return ids


@dataclass(frozen=True)
class Batch:
    """What one batch did: messages sent, recipients failed, and whether the sender should stop
    (`stopped`: paused, cancelled, nothing left) or wait (`wait_seconds`: Meta's throughput)."""

    sent: int = 0
    failed: int = 0
    stopped: bool = False
    wait_seconds: float = 0.0


def campaign_send_batch(*, campaign_id: int, graph: GraphClient, seconds: float = 1.0) -> Batch:
    """Send for about `seconds` at the campaign's pace: claim that many recipients and send each in
    turn, one every 1/rate seconds. Before each send the campaign must still be sending (a pause stops
    it at once). Meta's 130429 gives back the recipient, sets `throttled_until` and ends the batch
    (never fails the campaign); a customer's own refusal fails that recipient with Meta's error."""
    campaign = Campaign.objects.select_related("business_number", "template").get(pk=campaign_id)
    now = timezone.now()
    if campaign.status != Status.SENDING:
        return Batch(stopped=True)
    if campaign.throttled_until and campaign.throttled_until > now:
        return Batch(wait_seconds=(campaign.throttled_until - now).total_seconds())
    rate = campaign_pace(campaign)
    ids = recipients_claim(campaign_id=campaign_id, limit=max(1, math.floor(rate * seconds)))
    if not ids:
        if campaign_complete_if_done(campaign_id=campaign_id) or not _waiting(campaign_id):
            return Batch(stopped=True)
        return Batch(wait_seconds=1.0)  # others hold the rest: theirs once sent, or when their claim lapses
    started = time.monotonic()
    try:
        return _send_claimed(campaign, ids, rate=rate, graph=graph, started=started)
    finally:
        campaign_progress_changed(campaign_id)


def _send_claimed(
    campaign: Campaign, ids: list[int], *, rate: float, graph: GraphClient, started: float
) -> Batch:
    campaign_id, sent, failed = campaign.pk, 0, 0
    for index, recipient_id in enumerate(ids):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if not Campaign.objects.filter(pk=campaign_id, status=Status.SENDING).exists():
            _release(ids[index:])
            return Batch(sent=sent, failed=failed, stopped=True)
        outcome = recipient_send(campaign=campaign, recipient_id=recipient_id, graph=graph)
        if outcome == "sent":
            sent += 1
        elif outcome == "failed":
            failed += 1
        elif outcome == "throttled":
            _release(ids[index:])
            backoff = settings.CAMPAIGN_THROTTLE_BACKOFF_S
            return Batch(sent=sent, failed=failed, wait_seconds=backoff)
    return Batch(sent=sent, failed=failed)


def _waiting(campaign_id: int) -> bool:
    return Recipient.objects.filter(campaign_id=campaign_id, status=Recipient.Status.PENDING).exists()


def _release(recipient_ids: list[int]) -> None:
    Recipient.objects.filter(pk__in=recipient_ids, status=Recipient.Status.PENDING).update(claimed_until=None)


def voice_call_button(template: Template, payload: str) -> list[dict]:
    """The template's voice-call button with the campaign's payload (WHATSAPP_API.md §4.4), echoed as
    the call's `cta_payload`; nothing when the template has no such button."""
    index = 0
    for component in template.components or []:
        if not isinstance(component, dict) or str(component.get("type", "")).upper() != "BUTTONS":
            continue
        for button in component.get("buttons") or []:
            if isinstance(button, dict) and str(button.get("type", "")).upper() == "VOICE_CALL":
                return [
                    {"type": "button", "sub_type": "voice_call", "index": index,
                     "parameters": [{"type": "payload", "payload": payload}]}
                ]  # fmt: skip
            index += 1
    return []


def recipient_send(*, campaign: Campaign, recipient_id: int, graph: GraphClient) -> str:
    """Send the campaign's template to one claimed recipient: "sent", "failed" (recorded on the
    recipient), "throttled" (Meta's throughput: given back, `throttled_until` set) or "skipped" (sent
    already, or not this sender's). The message is recorded first under the recipient's key, so a
    recipient taken again after a sender died gets the same message, sent once."""
    recipient = Recipient.objects.select_related("contact").get(pk=recipient_id)
    if recipient.status != Recipient.Status.PENDING:
        return "skipped"
    message_id = recipient.message_id
    if message_id is None:
        try:
            with transaction.atomic():
                message = message_send_template(
                    business_number=campaign.business_number, contact=recipient.contact,
                    template=campaign.template, parameters=campaign.parameters or None,
                    idempotency_key=f"campaign:{campaign.pk}:recipient:{recipient.pk}",
                    buttons=voice_call_button(campaign.template, campaign.call_button_payload),
                    is_sent_by_worker=False,
                )  # fmt: skip
                Recipient.objects.filter(pk=recipient.pk).update(message=message)
        except ValidationError as refusal:  # e.g. the customer stopped marketing messages since
            _recipient_failed(recipient.pk, refusal.messages[0])
            return "failed"
        message_id = message.pk
    message = message_send_claim(message_id=message_id, lease=SEND_LEASE)
    if message is None:  # sent (or failed) by a sender that died before saying so
        return _recipient_follow(recipient.pk, message_id)
    try:
        wa_message_id = graph.message_send(
            phone_number_id=campaign.business_number.phone_number_id, body=message.request
        )
    except GraphTransportError:
        message_send_release(message_id=message_id)
        _campaign_throttled(campaign.pk, "WhatsApp could not be reached")
        return "throttled"
    except GraphAPIError as error:
        if error.code == THROTTLED or error.http_status == 429:
            message_send_release(message_id=message_id)
            _campaign_throttled(campaign.pk, str(error))
            return "throttled"
        if error.code == PAIR_THROTTLED:
            message_send_release(message_id=message_id)
            Recipient.objects.filter(pk=recipient.pk).update(
                claimed_until=timezone.now() + datetime.timedelta(minutes=1)
            )
            return "skipped"
        message_send_failed(message_id=message_id, error=str(error))
        if error.code == MARKETING_STOPPED:
            marketing_refused_by_meta(
                business_number_id=campaign.business_number_id, contact_id=recipient.contact_id,
                at=timezone.now(), detail=str(error), reference=f"message:{message_id}",
            )  # fmt: skip
        _recipient_failed(recipient.pk, str(error))
        return "failed"
    message_sent(message_id=message_id, wa_message_id=wa_message_id)
    Recipient.objects.filter(pk=recipient.pk, status=Recipient.Status.PENDING).update(
        status=Recipient.Status.SENT, sent_at=timezone.now(), claimed_until=None
    )
    return "sent"


def _recipient_follow(recipient_id: int, message_id: int) -> str:
    """The recipient's message was sent or failed already (or another sender is on it): follow it."""
    message = Message.objects.only("status", "error", "sent_at").get(pk=message_id)
    if message.status == Message.Status.PENDING:
        return "skipped"
    if message.status == Message.Status.FAILED:
        _recipient_failed(recipient_id, message.error)
        return "failed"
    Recipient.objects.filter(pk=recipient_id, status=Recipient.Status.PENDING).update(
        status=Recipient.Status.SENT, sent_at=message.sent_at or timezone.now(), claimed_until=None
    )
    return "sent"


def _recipient_failed(recipient_id: int, error: str) -> None:
    Recipient.objects.filter(pk=recipient_id, status=Recipient.Status.PENDING).update(
        status=Recipient.Status.FAILED, error=error[:300], claimed_until=None
    )


def _campaign_throttled(campaign_id: int, error: str) -> None:
    until = timezone.now() + datetime.timedelta(seconds=settings.CAMPAIGN_THROTTLE_BACKOFF_S)
    logger.info("campaign %s slowed down until %s: %s", campaign_id, until, error)
    Campaign.objects.filter(pk=campaign_id).update(throttled_until=until, last_error=error[:300])


def campaign_send(
    *, campaign_id: int, graph: GraphClient, budget_seconds: float, token: str | None = None
) -> float | None:
    """Be the campaign's sender for up to `budget_seconds`: batches at its pace, waiting out Meta's
    throttling. Returns None when there is nothing more to do (completed, paused, cancelled, or another
    sender is alive), else the seconds after which to carry on."""
    token = token or uuid.uuid4().hex
    deadline = time.monotonic() + budget_seconds
    try:
        while time.monotonic() < deadline:
            if not campaign_sender_take(campaign_id=campaign_id, token=token):
                return None
            batch = campaign_send_batch(campaign_id=campaign_id, graph=graph)
            if batch.stopped:
                return None
            if batch.wait_seconds:
                if time.monotonic() + batch.wait_seconds >= deadline:
                    return batch.wait_seconds
                time.sleep(batch.wait_seconds)
        return 0.0
    finally:
        campaign_sender_leave(campaign_id=campaign_id, token=token)


# --- Outcomes linked on the recipients (for their list; the counts come from the source rows) -------


def campaign_outcomes_link(*, campaign_id: int) -> int:
    """Note on each recipient the first reply after its message (`replied_at`) and the first call it
    placed through the campaign's button (`call`, `tapped_call_at`), where not noted yet: how many
    recipients gained one. Three UPDATEs whatever the list's length."""
    campaign = Campaign.objects.get(pk=campaign_id)
    recipients = Recipient.objects.filter(campaign_id=campaign_id, contact__isnull=False)
    replies = Message.objects.filter(
        business_number_id=campaign.business_number_id, contact_id=OuterRef("contact_id"),
        direction=Message.Direction.INBOUND, created_at__gt=OuterRef("sent_at"),
    ).order_by("created_at")  # fmt: skip
    replied = recipients.filter(Exists(replies), replied_at__isnull=True, sent_at__isnull=False)
    changed = replied.update(replied_at=Subquery(replies.values("created_at")[:1]))
    if campaign.call_button_payload:
        calls = Call.objects.filter(
            business_number_id=campaign.business_number_id, cta_payload=campaign.call_button_payload,
            contact_id=OuterRef("contact_id"),
        ).order_by("started_at")  # fmt: skip
        tapped = recipients.filter(Exists(calls), call__isnull=True)
        changed += tapped.update(
            call=Subquery(calls.values("pk")[:1]), tapped_call_at=Subquery(calls.values("started_at")[:1])
        )
    return changed
