import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from messaging.services import RATE_CARDS_FIXTURE, rate_cards_load


class Command(BaseCommand):
    help = "Load rate card rows (by default the shipped India figures and sample rates); rows there stay."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", nargs="?", default=str(RATE_CARDS_FIXTURE))

    def handle(self, *args, path: str, **options) -> None:
        try:
            document = json.loads(Path(path).read_text())
            created, existing = rate_cards_load(document=document)
        except (OSError, json.JSONDecodeError, ValidationError) as error:
            raise CommandError(f"{path}: {error}") from error
        self.stdout.write(f"Rate cards: {created} row(s) added, {existing} already there.")
