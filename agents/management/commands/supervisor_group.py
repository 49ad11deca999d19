"""The supervisor role: staff users in the `supervisor` group run the floor from the back office.

They review every call (listening to recordings, reading transcripts and summaries masked), see
charges and the audit trails, and manage agents, queues, skills and business hours. They only look
at business numbers, templates, rate cards and API keys: numbers and prices come from Meta, and an
API key can carry more than a supervisor may do here (the `admin` scope reads transcripts unredacted
and the whole account's billing), so making and revoking keys stays with administrators. Reading
raw text, erasing personal data and managing users are administrators' permissions too. Agents and
queues are not deleted by supervisors: reports and past calls keep naming them (an agent leaves the
floor by leaving its queues; a user account is closed by an administrator).

The migration `agents.0004_supervisor_group` creates the group; `manage.py supervisor_group` puts
it back to exactly this list (after an upgrade that changes the list, or a hand edit in admin).
"""

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents.services import SUPERVISOR_GROUP

SUPERVISOR_PERMISSIONS = (
    "agents.add_agent",
    "agents.change_agent",
    "agents.view_agent",
    "agents.view_agentstatusevent",
    "agents.add_queue",
    "agents.change_queue",
    "agents.view_queue",
    "agents.add_queuemembership",
    "agents.change_queuemembership",
    "agents.delete_queuemembership",
    "agents.view_queuemembership",
    "agents.add_skill",
    "agents.change_skill",
    "agents.delete_skill",
    "agents.view_skill",
    "calls.view_call",
    "calls.view_callevent",
    "compliance.view_auditevent",
    "compliance.view_callpermission",
    "compliance.view_consentrecord",
    "integrations.view_apikey",
    "integrations.view_apiwrite",
    "messaging.view_billingcurrency",
    "messaging.view_charge",
    "messaging.view_contact",
    "messaging.view_message",
    "messaging.view_ratecard",
    "messaging.view_rateregion",
    "messaging.view_template",
    "recordings.listen_recording",
    "recordings.view_erasure",
    "recordings.view_recording",
    "recordings.view_summary",
    "recordings.view_transcript",
    "whatsapp.view_businessnumber",
)


def supervisor_group_sync(*, group_model=Group, permission_model=Permission) -> tuple[list[str], list[str]]:
    """Make the supervisor group exist with exactly SUPERVISOR_PERMISSIONS ("app.codename").

    Returns the permissions it gained and those it lost. Raises LookupError, changing nothing,
    when a permission does not exist (its app not migrated yet). The models are arguments so the
    migration can pass its historical ones.
    """
    wanted = set(SUPERVISOR_PERMISSIONS)
    labels = {name.split(".")[0] for name in wanted}
    existing = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in permission_model.objects.filter(
            content_type__app_label__in=labels
        ).values_list("pk", "content_type__app_label", "codename")
    }
    missing = wanted - existing.keys()
    if missing:
        raise LookupError(f"These permissions do not exist (migrate first): {', '.join(sorted(missing))}")
    with transaction.atomic():
        group, _ = group_model.objects.get_or_create(name=SUPERVISOR_GROUP)
        had = {
            f"{app_label}.{codename}"
            for app_label, codename in group.permissions.values_list("content_type__app_label", "codename")
        }
        group.permissions.set([existing[name] for name in sorted(wanted)])
    return sorted(wanted - had), sorted(had - wanted)


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
