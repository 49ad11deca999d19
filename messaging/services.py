import collections
import datetime
import logging
import math
import mimetypes
import uuid
from dataclasses import dataclass
from decimal import Decimal

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from djmoney.money import Money

from core.events import event_publish
from core.jobs import enqueue_on_commit
from core.locks import transaction_lock
from messaging.conversations import conversation_message_received, conversation_message_sent
from messaging.models import (
    Charge,
    Contact,
    ConversationWindow,
    MarketingPreference,
    Message,
    RateCard,
    RateRegion,
    Template,
)
from messaging.preferences import (
    MARKETING_STOPPED,
    marketing_preference_apply,
    marketing_refuse_if_stopped,
    marketing_refused_by_meta,
)
from messaging.selectors import (
    AMOUNT_PLACES,
    FREE_PRICING_TYPES,
    PULSE_SECONDS,
    PULSES_PER_MINUTE,
    billing_currency,
    rate_find,
    send_options,
)
from messaging.selectors import RATE_CARDS_FIXTURE as RATE_CARDS_FIXTURE  # the loader's default file
from whatsapp.client import (
    GraphClient,
    GraphRequest,
    MediaTooLarge,
    template_message_request,
    text_message_request,
)
from whatsapp.errors import GraphAPIError, GraphTransportError
from whatsapp.events import MEDIA_TYPES, MessageReceived, MessageStatus, event_from_context
from whatsapp.models import BusinessNumber, WebhookEvent

logger = logging.getLogger(__name__)


def contact_get_or_create(*, wa_id: str, name: str = "") -> Contact:
    """The contact for a WhatsApp id, created on first sight; a newly learnt name is kept.

    Safe under concurrent first sight of the same id (the unique wa_id decides).
    """
    contact = Contact.objects.filter(wa_id=wa_id).first()
    if contact is None:
        try:
            with transaction.atomic():
                contact = Contact.objects.create(wa_id=wa_id, name=name, country=country_of_wa_id(wa_id))
        except IntegrityError:
            contact = Contact.objects.get(wa_id=wa_id)
    if name and contact.name != name:
        contact.name = name
        contact.save(update_fields=["name", "updated_at"])
    return contact


def contacts_get_or_create(*, people: dict[str, str]) -> dict[str, Contact]:
    """`contact_get_or_create` for many people at once ({WhatsApp id: name}): their contacts by id,
    in two statements at most."""
    contacts = {contact.wa_id: contact for contact in Contact.objects.filter(wa_id__in=people)}
    missing = [  # in id order: concurrent calls lock the rows they meet in one order
        Contact(wa_id=wa_id, name=name, country=country_of_wa_id(wa_id))
        for wa_id, name in sorted(people.items())
        if wa_id not in contacts
    ]
    if missing:
        # One first seen elsewhere meanwhile is fine: it is returned (its id) as if created here,
        # and keeps the name it was stored with.
        Contact.objects.bulk_create(
            missing, update_conflicts=True, unique_fields=["wa_id"], update_fields=["updated_at"]
        )
        contacts |= {contact.wa_id: contact for contact in missing}
    renamed = [contact for contact in contacts.values() if people[contact.wa_id] not in ("", contact.name)]
    if renamed:
        now = timezone.now()
        for contact in renamed:
            contact.name, contact.updated_at = people[contact.wa_id], now
        Contact.objects.bulk_update(renamed, ["name", "updated_at"])
    return contacts


def country_of_wa_id(wa_id: str) -> str:
    """ISO 3166 code of a WhatsApp id's phone number (phonenumbers); for a number phonenumbers does
    not know as valid, the main country of its calling code; empty if it has none."""
    try:
        number = phonenumbers.parse(f"+{wa_id}")
    except phonenumbers.NumberParseException:
        return ""
    region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
        number.country_code
    )
    return "" if region in (None, "ZZ") else region


def wa_id_from_text(text: object, *, region: str = "") -> str:
    """The WhatsApp id (E.164 digits, no '+') of a number a person typed in international format,
    or with `region` (a country code) also in that country's national format, trunk 0 first;
    ValidationError `invalid_customer` for anything else."""
    number = None
    if region and isinstance(text, str) and text.strip().startswith("0"):
        try:
            number = phonenumbers.parse(text.strip(), region)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None and not phonenumbers.is_possible_number(number):
            number = None
    if number is None:
        try:
            number = phonenumbers.parse(text if text.startswith("+") else f"+{text}", None)
        except (AttributeError, phonenumbers.NumberParseException):
            number = None
    if number is None or not phonenumbers.is_possible_number(number):
        written = (
            f"Not a phone number: type it as +44 7700 900123, or as it is written in {region} with its "
            "leading 0."
            if region
            else "Not an international phone number: type it as +44 7700 900123."
        )
        raise ValidationError(written, code="invalid_customer")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).removeprefix("+")


def customer_wa_id_from_text(text: object, *, business_number: BusinessNumber) -> str:
    """The WhatsApp id of the customer a person (or a CRM) typed for `business_number` to reach:
    international, or national with its trunk 0 in the business number's country. The one reading
    of a customer's number for the API, the agent's dialer and the supervisors' check;
    ValidationError `invalid_customer` for anything else."""
    region = business_number.country or country_of_wa_id(business_number.digits)
    return wa_id_from_text(text.strip() if isinstance(text, str) else text, region=region)


# --- Billing: rate cards and the charge ledger ----------------------------------------------------

CHARGED_STATUSES = frozenset({"delivered", "read"})  # `read` may arrive without `delivered` (§6.5)


@transaction.atomic
def rate_card_save(*, rate: RateCard) -> RateCard:
    """Validate and save a rate card row: ValidationError when its dates overlap another row of the
    same category, market and currency. Two saves of one key wait for each other (PostgreSQL takes a
    lock on the key; SQLite has one writer at a time), so they cannot both pass the check."""
    transaction_lock(f"rate_card:{rate.category}:{rate.market}:{rate.price_currency}")
    rate.full_clean()
    rate.save()
    return rate


def message_charges_record(*, events: list[MessageStatus]) -> None:
    """Record what delivered messages cost, once each, from their status webhooks' ``pricing`` objects.

    Only ``delivered`` and ``read`` charge (a failed or merely sent message never does); a duplicated or
    later status of a message finds its charge already there. ``pricing.type`` says whether Meta
    charges it (``regular``) or not (free in the customer-service or free entry point window: a zero
    charge is recorded, so reports count it); when it is missing the deprecated ``billable`` flag decides.
    The price is the rate card's for the category, the customer's country and the status's date (UTC),
    in the account's billing currency on that date. Many statuses (a campaign's, handled together)
    take a few statements in all, not a few each: each number, account currency and rate is looked
    up once, and the charges go in one insert (one per message: its first due status's pricing).
    """
    due = [event for event in events if event.status in CHARGED_STATUSES and event.pricing is not None]
    if not due:
        return
    charged = set(
        Charge.objects.filter(
            kind=Charge.Kind.MESSAGE, reference__in={event.message_id for event in due}
        ).values_list("reference", flat=True)
    )  # `read` after `delivered`, or a redelivery: charged already
    numbers = BusinessNumber.objects.in_bulk(
        {event.phone_number_id for event in due}, field_name="phone_number_id"
    )
    charges: dict[str, _Charge] = {}
    for event in due:
        number = numbers.get(event.phone_number_id)
        if event.message_id in charged or event.message_id in charges or number is None:
            continue
        pricing = event.pricing
        pricing_type = pricing.pricing_type or (
            Charge.PricingType.REGULAR
            if pricing.billable is not False
            else Charge.PricingType.FREE_CUSTOMER_SERVICE
        )
        charges[event.message_id] = _Charge(
            kind=Charge.Kind.MESSAGE,
            reference=event.message_id,
            business_number=number,
            country=country_of_wa_id(event.recipient_id),
            category=pricing.category,  # none: kept unpriced, as no rate prices it
            pricing_type=pricing_type,
            on=(event.occurred_at or timezone.now()).astimezone(datetime.UTC).date(),
            quantity=1,
            units=Decimal(1),
        )
    _charges_record(list(charges.values()), replaces=False, read_back=False)


@dataclass(frozen=True)
class CallTalk:
    """A connected call's time on the line, to be charged (`call_charges_record`)."""

    wa_call_id: str
    business_number: BusinessNumber
    customer_wa_id: str
    is_business_initiated: bool
    talk_seconds: int
    ended_at: datetime.datetime


def call_charge_record(
    *,
    wa_call_id: str,
    business_number: BusinessNumber,
    customer_wa_id: str,
    is_business_initiated: bool,
    talk_seconds: int,
    ended_at: datetime.datetime,
    is_metas_duration: bool = False,
) -> Charge:
    """Record what a connected call costs: a business-initiated call its 6-second pulses (rounded up:
    56 s is 10 pulses) at the customer's country's per-minute rate, a customer's call nothing. Once per
    call, from our own clock when the call ends; Meta's duration (``is_metas_duration``, from its
    terminate webhook) is what Meta bills, so it replaces ours."""
    talk = CallTalk(
        wa_call_id=wa_call_id,
        business_number=business_number,
        customer_wa_id=customer_wa_id,
        is_business_initiated=is_business_initiated,
        talk_seconds=talk_seconds,
        ended_at=ended_at,
    )
    (charge,) = call_charges_record(talks=[talk], is_metas_duration=is_metas_duration)
    return charge


def call_charges_record(*, talks: list[CallTalk], is_metas_duration: bool = False) -> list[Charge]:
    """`call_charge_record` for many calls at once (Meta's terminates received together): each
    account's currency and each rate looked up once, and with Meta's durations one statement for
    all (a call named twice is charged by its last)."""
    charges = []
    for talk in talks:
        pulses = math.ceil(talk.talk_seconds / PULSE_SECONDS)
        charges.append(
            _Charge(
                kind=Charge.Kind.CALL,
                reference=talk.wa_call_id,
                business_number=talk.business_number,
                country=country_of_wa_id(talk.customer_wa_id),
                category=RateCard.Category.CALL,
                pricing_type=Charge.PricingType.REGULAR
                if talk.is_business_initiated
                else Charge.PricingType.FREE_USER_INITIATED,
                on=talk.ended_at.astimezone(datetime.UTC).date(),
                quantity=pulses,
                units=Decimal(pulses) / PULSES_PER_MINUTE,
                duration_seconds=talk.talk_seconds,
            )
        )
    return _charges_record(charges, replaces=is_metas_duration)


@dataclass(frozen=True)
class _Charge:
    kind: str
    reference: str
    business_number: BusinessNumber
    country: str
    category: str
    pricing_type: str
    on: datetime.date
    quantity: int
    units: Decimal
    duration_seconds: int | None = None


def _charges_record(charges: list[_Charge], *, replaces: bool, read_back: bool = True) -> list[Charge]:
    if not charges:
        return []
    currencies: dict[tuple[str, datetime.date], str] = {}
    rates: dict[tuple[str, str, str, datetime.date], RateCard | None] = {}
    rows = []
    for charge in charges:
        account = (charge.business_number.waba_id, charge.on)
        if account not in currencies:
            currencies[account] = billing_currency(waba_id=charge.business_number.waba_id, on=charge.on)
        currency = currencies[account]
        rate, amount = None, Money(0, currency)
        if charge.pricing_type not in FREE_PRICING_TYPES:  # a type Meta adds later is charged, not free
            priced = (charge.category, charge.country, currency, charge.on)
            if priced not in rates:
                rates[priced] = rate_find(category=charge.category, country=charge.country, currency=currency,
                                          on=charge.on)  # fmt: skip
            rate = rates[priced]
            amount = (
                None
                if rate is None
                else Money((rate.price.amount * charge.units).quantize(AMOUNT_PLACES), currency)
            )
        fields = {
            "business_number": charge.business_number,
            "country": charge.country,
            "category": charge.category,
            "pricing_type": charge.pricing_type,
            "billed_on": charge.on,
            "quantity": charge.quantity,
            "duration_seconds": charge.duration_seconds,
            "amount": amount,
            "amount_currency": currency,  # kept for an unpriced charge too: counted in its currency
            "rate": rate,
        }
        rows.append((charge, fields))
    # One statement (INSERT … ON CONFLICT), not get_or_create's or update_or_create's round trips
    # (savepoints, a read, the insert) each: a campaign's statuses and every answered call's
    # terminate webhook come here. A reference twice: its last row (one statement may not update a
    # row twice).
    last = {(charge.kind, charge.reference): (charge, fields) for charge, fields in rows}
    new = [Charge(kind=charge.kind, reference=charge.reference, **fields) for charge, fields in last.values()]
    if replaces:
        recorded = Charge.objects.bulk_create(
            new, update_conflicts=True, unique_fields=["kind", "reference"], update_fields=list(rows[0][1])
        )
    else:
        # A charge already there (recorded meanwhile by another batch, which this insert waits for)
        # is kept as it is, and read back with the new ones.
        Charge.objects.bulk_create(new, ignore_conflicts=True)
        if not read_back:
            return []
        recorded = Charge.objects.filter(
            kind__in={charge.kind for charge in new}, reference__in=[charge.reference for charge in new]
        )
    by_reference = {(charge.kind, charge.reference): charge for charge in recorded}
    return [by_reference[charge.kind, charge.reference] for charge, _ in rows]


@transaction.atomic
def rate_cards_load(*, document: dict) -> tuple[int, int]:
    """Load rate card rows and regions from a document shaped like ``fixtures/rate_cards.json``.

    A row (same category, market, currency and first day) or region (same name) already there is left
    as it is, so loading
    twice, or after prices were edited in admin, changes nothing; a new row that overlaps another is
    refused (ValidationError naming the row) and nothing of the document is kept. Returns (rows
    created, rows already there).
    """
    for region in document.get("regions", []):
        RateRegion.objects.get_or_create(name=region["name"], defaults={"countries": region["countries"]})
    created = existing = 0
    for row in document.get("rates", []):
        try:
            currency = row["currency"]
            rate = RateCard(
                category=row["category"],
                market=row["market"],
                price=Money(Decimal(row["price"]), currency),
                effective_from=datetime.date.fromisoformat(row["effective_from"]),
                effective_to=datetime.date.fromisoformat(row["effective_to"])
                if row.get("effective_to")
                else None,
                source=row.get("source", ""),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise ValidationError(f"rate card row {row!r}: {error!r}") from error
        if RateCard.objects.filter(
            category=rate.category,
            market=rate.market,
            price_currency=currency,
            effective_from=rate.effective_from,
        ).exists():
            existing += 1
            continue
        try:
            rate_card_save(rate=rate)
        except ValidationError as error:
            raise ValidationError(f"rate card row {row!r}: {'; '.join(error.messages)}") from error
        created += 1
    return created, existing


# --- Windows: what a number may send a contact, and at what price -------------------------------

CUSTOMER_SERVICE_WINDOW = datetime.timedelta(hours=24)
FREE_ENTRY_REPLY_WITHIN = datetime.timedelta(hours=24)
FREE_ENTRY_WINDOW = datetime.timedelta(hours=72)


def windows_customer_wrote(
    *, business_number_id: int, contact_ids: list[int], at: datetime.datetime, from_ad: bool = False
) -> None:
    """Customers wrote to or called the number at ``at`` (or accepted its call): their customer-service
    windows run 24 h from it (an older event, delivered late, never shortens one); ``from_ad``: they
    wrote from a click-to-WhatsApp ad, so the business's reply within 24 h opens a free entry point
    window. Two statements however many customers."""
    ConversationWindow.objects.bulk_create(
        [ConversationWindow(business_number_id=business_number_id, contact_id=pk) for pk in contact_ids],
        ignore_conflicts=True,
    )
    until = at + CUSTOMER_SERVICE_WINDOW
    changes = {
        "customer_service_until": Greatest(Coalesce("customer_service_until", Value(until)), Value(until))
    }
    if from_ad:
        changes["referral_at"] = Greatest(Coalesce("referral_at", Value(at)), Value(at))
    ConversationWindow.objects.filter(
        business_number_id=business_number_id, contact_id__in=contact_ids
    ).update(**changes)


def window_business_replied(*, business_number_id: int, contact_id: int, at: datetime.datetime) -> None:
    """The business's message went out at ``at``: the first answer within 24 h to an ad's message opens
    the 72-hour free entry point window (once per ad message: later answers do not extend it)."""
    ConversationWindow.objects.filter(
        # No window yet, or the last one opened before this ad's message.
        Q(free_entry_until__isnull=True) | Q(free_entry_until__lt=F("referral_at") + FREE_ENTRY_WINDOW),
        business_number_id=business_number_id,
        contact_id=contact_id,
        referral_at__gte=at - FREE_ENTRY_REPLY_WITHIN,
        referral_at__lte=at,
    ).update(free_entry_until=at + FREE_ENTRY_WINDOW)


# --- Messages: the thread, sending, and Meta's statuses --------------------------------------------

STATUS_ORDER = {
    Message.Status.PENDING: 0,
    Message.Status.SENT: 1,
    Message.Status.DELIVERED: 2,
    Message.Status.READ: 3,
}


def message_received(event: MessageReceived) -> Message | None:
    """The ``message.received`` webhook handler: the customer's message, of whatever type, joins the
    thread, with what Meta said it could not show (``unsupported``) and what could not be read of it;
    a file it carries is fetched from Meta by a worker after commit."""
    number = BusinessNumber.objects.filter(phone_number_id=event.phone_number_id).first()
    if number is None:
        logger.warning("message %s for unknown number %s", event.idempotency_key, event.phone_number_id)
        return None
    media = event.media
    media_fields = {}
    if event.message_type in MEDIA_TYPES:
        media_fields = {
            "media_status": Message.MediaStatus.PENDING if media else Message.MediaStatus.FAILED,
            "media_error": "" if media else "Meta sent no media id",
        }
    if media is not None:
        media_fields |= {
            "media_id": media.media_id, "mime_type": media.mime_type, "media_sha256": media.sha256,
            "media_filename": media.filename,
        }  # fmt: skip
    errors = "; ".join(
        " ".join(part for part in (str(error.code), error.title or error.message) if part)
        + (f": {error.details}" if error.details else "")
        for error in event.errors
    )
    message = message_record_inbound(
        business_number=number,
        contact=contact_get_or_create(wa_id=event.from_number, name=event.contact_name),
        wa_message_id=event.message_id,
        message_type=event.message_type,
        text=event.text,
        raw=event.raw,
        referral=event.referral,
        at=event.occurred_at or timezone.now(),
        sent_at=event.occurred_at,
        error=errors,
        note="; ".join(event.notes),
        reacts_to=event.reacts_to,
        emoji=event.emoji,
        **media_fields,
    )
    if message.media_status == Message.MediaStatus.PENDING:
        from messaging.tasks import fetch_media

        enqueue_on_commit(fetch_media, message_id=message.pk)
    if event.marketing_preference:  # a system message: the customer stopped or resumed marketing (§10.2)
        marketing_preference_apply(
            business_number_id=number.pk, contact_id=message.contact_id,
            is_stopped=event.marketing_preference == "stop", at=event.occurred_at or timezone.now(),
            source=MarketingPreference.Source.SYSTEM_MESSAGE, detail=event.text,
            reference=event.idempotency_key,
        )  # fmt: skip
    return message


def message_record_inbound(
    *,
    business_number: BusinessNumber,
    contact: Contact,
    wa_message_id: str,
    message_type: str,
    text: str,
    raw: dict,
    at: datetime.datetime,
    referral: dict | None = None,
    opens_conversation: bool = True,
    **details: object,
) -> Message:
    """A customer's message joins the thread (once) and opens the customer-service window (and the way
    to a free entry point when it came from an ad), and joins their open conversation or opens one
    (not when `opens_conversation` is False: an answer that needs nobody, such as the customer's
    answer to a call permission request, which another app's handler records here). ``details``
    are more of the message's fields (``error``, ``note``, the media's, a reaction's), cut to their
    lengths. A message without Meta's id (the webhook intake tells such a message apart by its
    content) is recorded as it comes."""
    defaults = {
        "business_number": business_number, "contact": contact, "direction": Message.Direction.INBOUND,
        "message_type": message_type[:32], "text": text, "raw": raw, "referral": referral,
        "status": Message.Status.RECEIVED,
        **{name: _cut(name, value) for name, value in details.items()},
    }  # fmt: skip
    if wa_message_id:
        message, created = Message.objects.get_or_create(wa_message_id=wa_message_id, defaults=defaults)
    else:
        message, created = Message.objects.create(**defaults), True
    if created:
        windows_customer_wrote(
            business_number_id=business_number.pk,
            contact_ids=[contact.pk],
            at=at,
            from_ad=referral is not None,
        )
        conversation_message_received(message=message, may_open=opens_conversation)
    return message


def _cut(field_name: str, value: object) -> object:
    """A text cut to the length of the message's field (what Meta sends has no length limit)."""
    length = Message._meta.get_field(field_name).max_length
    return value[:length] if isinstance(value, str) and length else value


# --- Files customers send: fetched from Meta, kept in Django's default storage ----------------------

# Meta's answers that mean "not now" rather than "never": throttling (4, 80007, 130429) and its own
# trouble (131000, 131016), besides no answer at all (GraphTransportError).
TRANSIENT_ERROR_CODES = frozenset({4, 80007, 130429, 131000, 131016})


def _is_transient(error: GraphAPIError) -> bool:
    return (
        isinstance(error, GraphTransportError)
        or error.http_status == 429
        or error.code in TRANSIENT_ERROR_CODES
    )


def message_media_fetch(*, message_id: int, graph: GraphClient) -> bool:
    """Fetch the file of a customer's message from Meta and keep it: ``GET /<MEDIA_ID>`` gives a
    short-lived URL, downloaded with the access token (at most ``settings.WHATSAPP_MEDIA_MAX_BYTES``)
    into Django's default storage; the message is then marked stored by one conditional UPDATE, so a
    file fetched twice at once is kept once (the other copy is deleted). Meta's refusal (an unknown
    or expired file, say), a file too large or an id that is not Meta's mark it failed for good; a
    transient error (Meta unreachable, its 5xx, throttling) is raised for the caller to retry. True
    when the file was stored now; False when it is failed, or was not pending (stored, failed or
    gone)."""
    message = Message.objects.filter(pk=message_id, media_status=Message.MediaStatus.PENDING).first()
    if message is None:
        return False
    max_bytes = settings.WHATSAPP_MEDIA_MAX_BYTES
    try:
        location = graph.media_location(media_id=message.media_id)
        if location.file_size is not None and location.file_size > max_bytes:
            raise MediaTooLarge(f"the file is {location.file_size} bytes; at most {max_bytes} are kept")
        downloaded = graph.media_download(location.url, max_bytes=max_bytes)
    except GraphAPIError as error:
        if _is_transient(error):
            raise
        message_media_failed(message_id=message_id, error=_refusal(error))
        return False
    except (MediaTooLarge, ValueError) as error:
        message_media_failed(message_id=message_id, error=str(error))
        return False
    mime_type = message.mime_type or location.mime_type or downloaded.content_type
    extension = mimetypes.guess_extension(mime_type.split(";")[0].strip()) or ""
    with downloaded.file:
        message.media.save(f"{message.pk}{extension}", File(downloaded.file), save=False)
    stored = Message.objects.filter(pk=message_id, media_status=Message.MediaStatus.PENDING).update(
        media=message.media.name, media_status=Message.MediaStatus.STORED, media_size=downloaded.size,
        mime_type=mime_type[:128], media_error="", updated_at=timezone.now(),
    )  # fmt: skip
    if not stored:  # fetched meanwhile by another worker, or the message is gone (erased)
        message.media.storage.delete(message.media.name)
    return bool(stored)


def _refusal(error: GraphAPIError) -> str:
    if error.code is not None:
        return f"WhatsApp refused it (error {error.code}): {error.message}"
    if error.http_status == 404:
        return "WhatsApp answered HTTP 404: the file is gone or its link expired"
    return f"WhatsApp answered HTTP {error.http_status}"


def message_media_failed(*, message_id: int, error: str) -> None:
    """The file of a customer's message could not be fetched: the thread says so, with why."""
    Message.objects.filter(pk=message_id, media_status=Message.MediaStatus.PENDING).update(
        media_status=Message.MediaStatus.FAILED, media_error=error[:255], updated_at=timezone.now()
    )


def message_media_delete_on_commit(*, names: list[str]) -> None:
    """Delete stored files of messages once the transaction that deleted the messages commits (a
    file that cannot be deleted is logged)."""
    storage = Message._meta.get_field("media").storage

    def delete() -> None:
        for name in names:
            try:
                storage.delete(name)
            except OSError:
                logger.exception("message file %s could not be deleted", name)

    transaction.on_commit(delete)


def message_status_received(event: MessageStatus) -> None:
    """The ``message.status`` webhook handler: a message of ours moves on, and a delivered one is charged
    (once). A status may come before the send's answer named the message: ``message_sent`` then applies
    it from the stored event."""
    message_status_apply(event=event)
    message_charges_record(events=[event])


def message_statuses_received(events: list[MessageStatus]) -> None:
    """What ``message_status_received`` does for each of many statuses handled together (a campaign's,
    by the worker: whatsapp.services.webhook_events_handle_queued), in a few statements for the batch
    (three for each of ``sent``, ``delivered`` and ``read``, and a few for the charges) rather than a
    few for each status. Statuses of messages not recorded yet, and every status of a message with a
    ``failed`` or ``played`` among them, go one at a time, in order. For the others order does not
    matter: a message only moves on (``sent``, ``delivered``, ``read``, applied in that order here) and
    is charged once."""
    ranked = [event for event in events if event.status in BULK_STATUSES]
    known = set(
        Message.objects.filter(
            wa_message_id__in={event.message_id for event in ranked}, direction=Message.Direction.OUTBOUND
        ).values_list("wa_message_id", flat=True)
    )
    alone = {event.message_id for event in events if event.status not in BULK_STATUSES} | {
        event.message_id for event in ranked if event.message_id not in known
    }
    together = [event for event in ranked if event.message_id not in alone]
    for event in events:
        if event.message_id in alone:
            message_status_received(event)
    for status in BULK_STATUSES:
        of_status = {event.message_id: event for event in reversed(together) if event.status == status}
        if not of_status:
            continue
        messages = Message.objects.filter(
            wa_message_id__in=list(of_status), direction=Message.Direction.OUTBOUND
        )
        now = timezone.now()
        # Meta's timestamps are whole seconds: a batch's hundreds of statuses share a few, and the
        # statement names each time once rather than each message's.
        by_time = collections.defaultdict(list)
        for message_id, event in of_status.items():
            by_time[event.occurred_at or now].append(message_id)
        at = Case(
            *[When(wa_message_id__in=ids, then=Value(occurred)) for occurred, ids in by_time.items()],
            output_field=DateTimeField(),
        )
        messages.filter(**{f"{status}_at__isnull": True}).update(**{f"{status}_at": at})
        earlier = [earlier for earlier, order in STATUS_ORDER.items() if order < STATUS_ORDER[status]]
        moved = list(
            messages.filter(status__in=earlier).values_list("pk", "business_number_id", "wa_message_id")
        )
        for pk, number_id, message_id in moved:
            _publish_status([(pk, number_id)], of_status[message_id])
        Message.objects.filter(pk__in=[pk for pk, _, _ in moved]).update(status=status)
    message_charges_record(events=together)


BULK_STATUSES = (Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ)


def message_status_apply(*, event: MessageStatus) -> None:
    """Move a message on by a status, never back (``read`` may come before ``delivered``); ``failed``
    records Meta's error."""
    at = event.occurred_at or timezone.now()
    messages = Message.objects.filter(wa_message_id=event.message_id, direction=Message.Direction.OUTBOUND)
    if not messages.exists():
        # Perhaps the send's answer is being recorded right now: wait for it (message_sent holds the
        # lock), and if it was not, message_sent will find this status stored once this commits.
        transaction_lock(f"message:{event.message_id}")
    if event.status == Message.Status.FAILED:
        error = "; ".join(f"{error.code} {error.title}".strip() for error in event.errors)[:255]
        moved = messages.exclude(status__in=[Message.Status.DELIVERED, Message.Status.READ])
        if any(refusal.code == MARKETING_STOPPED for refusal in event.errors):
            for number_id, contact_id in moved.values_list("business_number_id", "contact_id"):
                marketing_refused_by_meta(
                    business_number_id=number_id, contact_id=contact_id, at=at, detail=error,
                    reference=event.message_id,
                )  # fmt: skip
        _publish_status(list(moved.values_list("pk", "business_number_id")), event)
        moved.update(status=Message.Status.FAILED, failed_at=at, error=error or "failed")
        return
    rank = STATUS_ORDER.get(event.status)
    if rank is None:
        return
    earlier = [status for status, order in STATUS_ORDER.items() if order < rank]
    messages.filter(**{f"{event.status}_at__isnull": True}).update(**{f"{event.status}_at": at})
    moved = messages.filter(status__in=earlier)
    _publish_status(list(moved.values_list("pk", "business_number_id")), event)
    moved.update(status=event.status)


def _publish_status(moved: list[tuple[int, int]], event: MessageStatus) -> None:
    for message_id, number_id in moved:
        event_publish(
            "message.status",
            business_number_id=number_id,
            data={"message_id": message_id, "wa_message_id": event.message_id, "status": event.status},
        )


def message_send_text(
    *, business_number: BusinessNumber, contact: Contact, text: str, idempotency_key: str = "", sent_by=None
) -> Message:
    """Record a free-form text and send it (after commit, by a task). Only inside the customer-service
    window: outside it ValidationError ``outside_service_window`` says to send a template instead."""
    if not text.strip():
        raise ValidationError("A message needs some text.", code="empty")
    options = send_options(business_number=business_number, contact=contact)
    is_retry = bool(idempotency_key) and Message.objects.filter(idempotency_key=idempotency_key).exists()
    if not options.is_service_window_open and not is_retry:  # a retry gets its message, window or not
        raise ValidationError(
            "The customer has not written or called in the last 24 hours: only a template can be sent now.",
            code="outside_service_window",
        )
    request = text_message_request(
        phone_number_id=business_number.phone_number_id, to=contact.wa_id, body=text
    )
    return _message_record(
        business_number=business_number, contact=contact, message_type="text", text=text,
        request=request.json, idempotency_key=idempotency_key, sent_by=sent_by,
    )  # fmt: skip


def message_send_template(
    *,
    business_number: BusinessNumber,
    contact: Contact,
    template: Template,
    parameters: list[str] | None = None,
    idempotency_key: str = "",
    sent_by=None,
    buttons: list[dict] | None = None,
    is_sent_by_worker: bool = True,
) -> Message:
    """Record an approved template of the number's account, its body filled with ``parameters`` in order
    (and its ``buttons`` components as given, e.g. a voice-call button's payload, WHATSAPP_API.md §4.4),
    and send it (after commit, by a task; without ``is_sent_by_worker`` the caller sends it, as a
    campaign's paced sender does). Allowed at any time; what it costs follows the windows. A
    marketing template to a customer who stopped marketing messages from the number is refused
    (ValidationError ``marketing_stopped``, saying since when): nothing is recorded, sent or charged."""
    if template.waba_id != business_number.waba_id or template.status != Template.Status.APPROVED:
        raise ValidationError(
            f"{template} is not an approved template of this number's account.", code="template"
        )
    is_retry = bool(idempotency_key) and Message.objects.filter(idempotency_key=idempotency_key).exists()
    if template.category == RateCard.Category.MARKETING and not is_retry:  # a retry gets its message
        marketing_refuse_if_stopped(business_number_id=business_number.pk, contact_id=contact.pk)
    components = None
    if parameters:
        components = [
            {"type": "body", "parameters": [{"type": "text", "text": str(value)} for value in parameters]}
        ]
    if buttons:
        components = [*(components or []), *buttons]
    request = template_message_request(
        phone_number_id=business_number.phone_number_id, to=contact.wa_id, name=template.name,
        language=template.language, components=components,
    )  # fmt: skip
    return _message_record(
        business_number=business_number, contact=contact, message_type="template", text=template.name,
        request=request.json, idempotency_key=idempotency_key, sent_by=sent_by, template=template,
        is_sent_by_worker=is_sent_by_worker,
    )  # fmt: skip


def message_record_from_assistant(
    *, business_number: BusinessNumber, contact: Contact, request: GraphRequest, text: str
) -> Message:
    """Record the number's assistant's reply (a text, or the call button), marked as the
    assistant's, for the caller to send once this commits (``message_send_recorded``)."""
    return _message_record(
        business_number=business_number, contact=contact, message_type=request.json["type"], text=text,
        request=request.json, idempotency_key="", is_sent_by_worker=False, is_from_assistant=True,
    )  # fmt: skip


def _message_record(
    *, business_number, contact, message_type, text, request, idempotency_key, sent_by=None, template=None,
    is_sent_by_worker=True, is_from_assistant=False,
) -> Message:  # fmt: skip
    """Recorded before it is sent (by a worker, after commit, unless the caller sends it): a request
    retried with the same key gets the same message back, sent once; the same key with another message
    is refused."""
    from messaging.tasks import send_message

    key = idempotency_key or uuid.uuid4().hex
    message, created = Message.objects.get_or_create(
        idempotency_key=key,
        defaults={
            "business_number": business_number, "contact": contact, "direction": Message.Direction.OUTBOUND,
            "message_type": message_type, "text": text, "template": template, "request": request,
            "status": Message.Status.PENDING, "sent_by": sent_by, "is_from_assistant": is_from_assistant,
        },
    )  # fmt: skip
    if not created and (message.request != request or message.business_number_id != business_number.pk):
        raise ValidationError("This idempotency key was used for another message.", code="idempotency_key")
    if created and is_sent_by_worker:
        enqueue_on_commit(send_message, message_id=message.pk)
    if created:
        conversation_message_sent(message=message)
    return message


@transaction.atomic
def message_sent(*, message_id: int, wa_message_id: str) -> None:
    """Meta took the message and named it: it is sent (opening a free entry point window when it answers
    an ad), and any status Meta delivered before naming it is applied now."""
    now = timezone.now()
    transaction_lock(f"message:{wa_message_id}")  # a status of it being received meanwhile waits, or is seen
    updated = Message.objects.filter(pk=message_id, status=Message.Status.PENDING).update(
        wa_message_id=wa_message_id, status=Message.Status.SENT, sent_at=now
    )
    if not updated:
        return
    number_id, contact_id = Message.objects.values_list("business_number_id", "contact_id").get(pk=message_id)
    window_business_replied(business_number_id=number_id, contact_id=contact_id, at=now)
    _apply_early_statuses(wa_message_id)


def message_send_now(
    *, business_number: BusinessNumber, contact: Contact, request: GraphRequest, text: str, graph: GraphClient
) -> Message:
    """Record a message and send it at once, in the caller's process (the compliance fallback sends while
    it holds a lock and needs Meta's answer then; a task already runs in a worker). Meta's refusal is
    recorded on the message, then raised (``GraphAPIError``) for the caller to handle."""
    message = _message_record(
        business_number=business_number, contact=contact, message_type=request.json["type"], text=text,
        request=request.json, idempotency_key="", is_sent_by_worker=False,
    )  # fmt: skip
    try:
        wa_message_id = graph.message_send(phone_number_id=business_number.phone_number_id, body=request.json)
    except GraphAPIError as error:
        message_send_failed(message_id=message.pk, error=str(error))
        _record_marketing_refusal(message, error)
        raise
    message_sent(message_id=message.pk, wa_message_id=wa_message_id)
    message.refresh_from_db()
    return message


def _apply_early_statuses(wa_message_id: str) -> None:
    """Statuses Meta delivered before the send's answer named the message (stored, not yet applied)."""
    # Exact keys (whatsapp.events.MessageStatus.idempotency_key): the unique index finds them at once.
    keys = [f"message:{wa_message_id}:status:{status}" for status in (*STATUS_ORDER, Message.Status.FAILED)]
    early = WebhookEvent.objects.filter(idempotency_key__in=keys)
    for record in early.order_by("occurred_at", "pk"):
        event = event_from_context(record.payload)
        if isinstance(event, MessageStatus):
            message_status_apply(event=event)


SEND_LEASE = datetime.timedelta(minutes=1)  # a send taken this long ago and not finished is taken again


def message_send_recorded(*, message_id: int, graph: GraphClient) -> str:
    """Send a recorded message: its `wamid`, or "" when there was nothing to send (gone, sent
    already, being sent by another worker) or Meta refused it (recorded on the message, not to be
    tried again). The sender takes the message first (one conditional UPDATE), so two senders never
    both send it; a transport error (GraphTransportError, raised) gives it back for the next try."""
    message = message_send_claim(message_id=message_id, lease=SEND_LEASE)
    if message is None:
        return ""
    try:
        wa_message_id = graph.message_send(
            phone_number_id=message.business_number.phone_number_id, body=message.request
        )
    except GraphTransportError:
        message_send_release(message_id=message_id)
        raise
    except GraphAPIError as error:
        logger.info("message %s refused by Meta: %s", message_id, error)
        message_send_failed(message_id=message_id, error=str(error))
        _record_marketing_refusal(message, error)
        return ""
    message_sent(message_id=message_id, wa_message_id=wa_message_id)
    return wa_message_id


def message_send_claim(*, message_id: int, lease: datetime.timedelta) -> Message | None:
    """Take a pending message to send it (one conditional UPDATE): None when it is sent or failed
    already, or another worker took it less than ``lease`` ago."""
    now = timezone.now()
    taken = (
        Message.objects.filter(pk=message_id, status=Message.Status.PENDING, wa_message_id__isnull=True)
        .filter(Q(send_claimed_at__isnull=True) | Q(send_claimed_at__lt=now - lease))
        .update(send_claimed_at=now, send_attempts=F("send_attempts") + 1)
    )
    return Message.objects.select_related("business_number").get(pk=message_id) if taken else None


def message_send_release(*, message_id: int) -> None:
    """Give back a message whose send did not reach Meta, for the next attempt."""
    Message.objects.filter(pk=message_id, status=Message.Status.PENDING).update(send_claimed_at=None)


def _record_marketing_refusal(message: Message, error: GraphAPIError) -> None:
    """Meta refused with 131050: the customer stopped marketing messages before we heard of it."""
    if error.code == MARKETING_STOPPED:
        marketing_refused_by_meta(
            business_number_id=message.business_number_id, contact_id=message.contact_id,
            at=timezone.now(), detail=str(error), reference=f"message:{message.pk}",
        )  # fmt: skip


def message_send_failed(*, message_id: int, error: str) -> None:
    """Meta refused the message (outside the window, unknown template, a number not on WhatsApp...)."""
    Message.objects.filter(pk=message_id, status=Message.Status.PENDING).update(
        status=Message.Status.FAILED, failed_at=timezone.now(), error=error[:255]
    )


# --- Templates: kept in step with the account's templates on Meta -------------------------------

MAX_TEMPLATE_PAGES = 100  # 100 templates a page: far more than Meta lets an account have


def templates_sync(*, waba_id: str, graph: GraphClient) -> tuple[int, int, int]:
    """Make the account's templates here what Meta lists: new ones added, changed ones updated (status,
    category, components), and ones Meta no longer lists disabled (a message may still name them).
    Templates entered in admin under names Meta does not know are disabled too: Meta would refuse them.
    Returns (added, updated, disabled)."""
    listed: dict[tuple[str, str], dict] = {}
    after = ""
    for _ in range(MAX_TEMPLATE_PAGES):
        page = graph.templates_page(waba_id=waba_id, after=after)
        for item in page.templates:
            name, language = item.get("name"), item.get("language")
            if isinstance(name, str) and isinstance(language, str):
                listed[(name, language)] = item
        if not page.next_after:
            break
        after = page.next_after
    return _templates_apply(waba_id=waba_id, listed=listed)


@transaction.atomic
def _templates_apply(*, waba_id: str, listed: dict[tuple[str, str], dict]) -> tuple[int, int, int]:
    """Write what Meta listed (read before: no transaction waits on the network)."""
    known = {
        (template.name, template.language): template for template in Template.objects.filter(waba_id=waba_id)
    }
    added = updated = 0
    for (name, language), item in listed.items():
        fields = {
            "category": str(item.get("category", "")).lower()[:32],
            "status": str(item.get("status", Template.Status.PENDING)).upper()[:16],
            "components": item.get("components") if isinstance(item.get("components"), list) else [],
        }
        template = known.get((name, language))
        if template is None:
            Template.objects.create(waba_id=waba_id, name=name, language=language, **fields)
            added += 1
        elif any(getattr(template, field) != value for field, value in fields.items()):
            Template.objects.filter(pk=template.pk).update(**fields, updated_at=timezone.now())
            updated += 1
    gone = [template.pk for key, template in known.items() if key not in listed]
    disabled = (
        Template.objects.filter(pk__in=gone)
        .exclude(status=Template.Status.DISABLED)
        .update(status=Template.Status.DISABLED, updated_at=timezone.now())
    )
    return added, updated, disabled
