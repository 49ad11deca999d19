"""`manage.py supervisor_group`: the supervisor group back to exactly its permissions (agents.services
SUPERVISOR_PERMISSIONS; every `migrate` does it too), saying what it added or removed."""

from django.core.management.base import BaseCommand, CommandError

from agents.services import SUPERVISOR_GROUP, SUPERVISOR_PERMISSIONS, supervisor_group_sync


class Command(BaseCommand):
    help = "Give the supervisor group exactly the permissions supervisors need (and create it if missing)."

    def handle(self, *args, **options) -> None:
        try:
            added, removed = supervisor_group_sync()
        except LookupError as error:
            raise CommandError(str(error)) from None
        for name in added:
            self.stdout.write(f"+ {name}")
        for name in removed:
            self.stdout.write(f"- {name}")
        changed = (
            "in step already" if not (added or removed) else f"{len(added)} added, {len(removed)} removed"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"The {SUPERVISOR_GROUP} group has its {len(SUPERVISOR_PERMISSIONS)} permissions ({changed})."
            )
        )
