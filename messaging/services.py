import phonenumbers
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.models import Contact


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
    in three statements at most."""
    contacts = {contact.wa_id: contact for contact in Contact.objects.filter(wa_id__in=people)}
    missing = [
        Contact(wa_id=wa_id, name=name, country=country_of_wa_id(wa_id))
        for wa_id, name in people.items()
        if wa_id not in contacts
    ]
    if missing:
        Contact.objects.bulk_create(missing, ignore_conflicts=True)  # first seen elsewhere meanwhile: fine
        contacts = {contact.wa_id: contact for contact in Contact.objects.filter(wa_id__in=people)}
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


def wa_id_from_text(text: object) -> str:
    """The WhatsApp id (E.164 digits, no '+') of a number a person typed in international format;
    ValidationError `invalid_customer` for anything else."""
    try:
        number = phonenumbers.parse(text if text.startswith("+") else f"+{text}", None)
    except (AttributeError, phonenumbers.NumberParseException):
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise ValidationError(
            "Not an international phone number: type it as +44 7700 900123.", code="invalid_customer"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).removeprefix("+")
