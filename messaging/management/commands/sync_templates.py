from django.core.management.base import BaseCommand

from messaging.tasks import sync_templates


class Command(BaseCommand):
    help = "Bring every account's message templates in step with Meta's list now (beat does it hourly)."

    def handle(self, *args, **options) -> None:
        changed = sync_templates()
        self.stdout.write(
            f"Templates: {changed} added, updated or disabled (an account Meta refused is logged)."
        )
