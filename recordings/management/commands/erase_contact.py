from django.core.management.base import BaseCommand, CommandError

from messaging.models import Contact
from recordings.services import contact_erase


class Command(BaseCommand):
    help = "Erase a contact's personal data (a GDPR request): recordings, transcripts, summaries, messages."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "number", help="The contact's WhatsApp number, international format (+ optional)."
        )
        parser.add_argument("--reason", required=True, help="Why, e.g. the request's reference.")

    def handle(self, *args, number: str, reason: str, **options) -> None:
        contact = Contact.objects.filter(wa_id=number.lstrip("+").replace(" ", "")).first()
        if contact is None:
            raise CommandError(f"No contact has the number {number}.")
        try:
            erasure = contact_erase(contact_id=contact.pk, requested_by_id=None, reason=reason)
        except ValueError as error:
            raise CommandError(str(error)) from error
        removed = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in erasure.counts.items())
        self.stdout.write(f"Erased {erasure.contact_label}: {removed}.")
