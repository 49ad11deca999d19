import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from agents.models import Agent, AgentStatusEvent, Queue, QueueMembership
from core.realtime import broadcast_on_commit
from whatsapp.models import BusinessNumber
from whatsapp.sandbox.meta import ENABLED_CALLING_SETTINGS

logger = logging.getLogger(__name__)

# Called after commit, in the order registered, with an agent's id whenever the agent becomes free to
# take work (available again). The messaging app registers its router of conversations here, then
# the calls app its router of calls (INSTALLED_APPS' order): agents imports neither.
_freed_listeners: list[Callable[[int], None]] = []


def agent_freed_listener_register(listener: Callable[[int], None]) -> None:
    if listener not in _freed_listeners:
        _freed_listeners.append(listener)


# What only the calls app knows about an agent's presence (agents never imports calls): the call an
# agent in wrap-up has still to file (its id, or None); how a ring is withdrawn from an agent who
# goes away or offline while rung (it returns whether it withdrew one and moved the agent); and how
# an agent's wrap-up is ended for them, filing what they typed (whether it moved the agent).
_unfiled_call_readers: list[Callable[..., int | None]] = []
_ring_withdrawers: list[Callable[..., bool]] = []
_wrap_up_enders: list[Callable[..., bool]] = []


def unfiled_call_reader_register(reader: Callable[..., int | None]) -> None:
    if reader not in _unfiled_call_readers:
        _unfiled_call_readers.append(reader)


def ring_withdrawer_register(withdrawer: Callable[..., bool]) -> None:
    if withdrawer not in _ring_withdrawers:
        _ring_withdrawers.append(withdrawer)


def wrap_up_ender_register(ender: Callable[..., bool]) -> None:
    if ender not in _wrap_up_enders:
        _wrap_up_enders.append(ender)


def agent_transition(*, agent_id: int, allowed_from: Iterable[str], to_status: str, **changes: Any) -> bool:
    """Move an agent to `to_status` if it is in one of `allowed_from`: one conditional UPDATE.

    Returns whether this call won (False: the agent was elsewhere, or someone else moved it
    first). The winner records an AgentStatusEvent and, after commit, pushes the new presence to
    every open tab of the agent; becoming available also tells the freed-agent listeners.
    """
    allowed_from = set(allowed_from)
    if len(allowed_from) == 1:
        [previous] = allowed_from  # the conditional UPDATE below checks it: no need to read it first
    else:
        previous = Agent.objects.filter(pk=agent_id).values_list("status", flat=True).first()
        if previous is None or previous not in allowed_from:
            return False
    now = timezone.now()
    updated = Agent.objects.filter(pk=agent_id, status=previous).update(
        status=to_status, status_changed_at=now, updated_at=now, **changes
    )
    if updated != 1:
        return False
    if previous != to_status:
        AgentStatusEvent.objects.create(
            agent_id=agent_id, previous_status=previous, status=to_status, changed_at=now
        )
    _broadcast_status(agent_id, to_status, now)
    broadcast_on_commit("supervisors", {"type": "wallboard.changed", "agent_id": agent_id})
    if to_status == Agent.Status.AVAILABLE:
        for listener in _freed_listeners:
            transaction.on_commit(lambda listener=listener: listener(agent_id))
    return True


def _broadcast_status(agent_id: int, status: str, at, *, then: dict | None = None) -> None:
    frame = {"type": "agent.status", "agent_id": agent_id, "status": status, "changed_at": at.isoformat()}
    if then is None:
        broadcast_on_commit(f"agent.{agent_id}", frame)
    else:  # the agent's consumer sends each in turn (AgentConsumer.agent_frames)
        broadcast_on_commit(f"agent.{agent_id}", {"type": "agent.frames", "frames": [frame, then]})


def agents_ring(*, agent_ids: list[int], frames: dict[int, dict] | None = None) -> bool:
    """Claim many free agents for calls at once (available → ringing): one conditional UPDATE.

    All or none: False when any of them was no longer available, and the caller must roll back
    (routing has locked the rows it picked, so on PostgreSQL this does not happen).

    `frames[agent_id]` (the ring) goes to the agent's tabs right behind the new status, in the same
    channel-layer message: in a burst of callers that halves the messages that ring the agents.
    """
    now = timezone.now()
    claimed = Agent.objects.filter(pk__in=agent_ids, status=Agent.Status.AVAILABLE).update(
        status=Agent.Status.RINGING, status_changed_at=now, updated_at=now, last_offered_at=now
    )
    if claimed != len(set(agent_ids)):
        return False
    AgentStatusEvent.objects.bulk_create(
        [
            AgentStatusEvent(
                agent_id=agent_id,
                previous_status=Agent.Status.AVAILABLE,
                status=Agent.Status.RINGING,
                changed_at=now,
            )
            for agent_id in agent_ids
        ]
    )
    frames = frames or {}
    for agent_id in agent_ids:
        _broadcast_status(agent_id, Agent.Status.RINGING, now, then=frames.get(agent_id))
    broadcast_on_commit("supervisors", {"type": "wallboard.changed", "agent_id": agent_ids[-1]})
    return True


@transaction.atomic
def agent_set_status(*, agent_id: int, status: str) -> Agent:
    """Set an agent's own presence (available, away or offline).

    Refused (ValidationError) for a status an agent cannot choose, while a call is connected to
    the agent, and in wrap-up while the call is not filed yet (code `wrap_up_unfiled`: filing
    chooses the next status, so what the agent typed is never left behind). Going away or offline
    while a call rings withdraws the ring (it goes to the next agent); going available then is
    refused. Setting the status the agent already has changes nothing. Going available clears the
    count of missed offers.
    """
    if status not in Agent.PRESENCE_STATUSES:
        raise ValidationError(f"{status!r} is not a presence an agent can choose.", code="invalid_status")
    agent = Agent.objects.get(pk=agent_id)
    if agent.status == status:
        return agent
    if agent.status == Agent.Status.RINGING and status != Agent.Status.AVAILABLE:
        if any(withdraw(agent_id=agent_id, to_status=status) for withdraw in _ring_withdrawers):
            agent.refresh_from_db()
            return agent
        agent.refresh_from_db()  # the ring was answered or withdrawn meanwhile
    if agent.status == Agent.Status.WRAP_UP and any(
        read(agent_id=agent_id) is not None for read in _unfiled_call_readers
    ):
        raise ValidationError(
            "File the call first: choose its outcome, then File and go away or File and stay available.",
            code="wrap_up_unfiled",
        )
    changes = {"missed_offers": 0} if status == Agent.Status.AVAILABLE else {}
    if not agent_transition(
        agent_id=agent_id, allowed_from=Agent.SELF_SERVICE_STATUSES, to_status=status, **changes
    ):
        raise ValidationError(_busy_reason(agent_id), code="busy")
    agent.refresh_from_db()
    return agent


def _busy_reason(agent_id: int) -> str:
    now = Agent.objects.filter(pk=agent_id).values_list("status", flat=True).first()
    if now == Agent.Status.RINGING:
        return "A call is ringing for you: accept or decline it first."
    return "Finish the call first: presence cannot change during a call."


def agent_offline_if_gone(*, agent_id: int) -> bool:
    """Take the agent offline if no dashboard of theirs is open (after the grace period, or after
    their sockets went silent: `agents.presence`). Returns whether the agent was taken offline.

    From available, away or wrap-up, and from ringing: the ring is withdrawn and goes to the next
    agent (left to ring out, the agent would be made available again with nobody there to hear the
    next ring). A call in progress is left alone. Wrap-up ends as its timer ends it: what the agent
    typed and did not file is filed with the call, never left behind with the closed tab. An agent
    taken offline so comes back as they were when a tab of theirs opens again
    (`agent_comes_back`).
    """
    from agents.presence import agents_present

    if agents_present([agent_id]):
        return False
    return _offline_for_being_gone(agent_id)


def agents_gone_offline() -> int:
    """(The agents' sweep, every few seconds.) Every agent who may be rung or is in wrap-up with
    nothing of theirs present any more is taken offline: a web process that died, a tab gone
    silent, a ring while the last tab closed. Returns how many were."""
    from agents.presence import agents_present

    candidates = list(Agent.objects.filter(status__in=GONE_FROM).values_list("pk", flat=True))
    present = agents_present(candidates)
    taken = 0
    for agent_id in candidates:
        if agent_id in present:
            continue
        try:
            taken += _offline_for_being_gone(agent_id)
        except Exception:  # one agent's failure must not keep the others on the floor
            logger.exception("agent %s is gone but could not be taken offline", agent_id)
    return taken


# The statuses an agent who is gone is taken offline from (on_call is the call's to end).
GONE_FROM = frozenset({Agent.Status.AVAILABLE, Agent.Status.AWAY, Agent.Status.WRAP_UP, Agent.Status.RINGING})


def _offline_for_being_gone(agent_id: int) -> bool:
    from agents.presence import agents_present, gone_mark

    status = Agent.objects.filter(pk=agent_id).values_list("status", flat=True).first()
    if status not in GONE_FROM:
        return False
    with transaction.atomic():
        is_offline = (
            any(withdraw(agent_id=agent_id, to_status=Agent.Status.OFFLINE) for withdraw in _ring_withdrawers)
            or any(end(agent_id=agent_id, to_status=Agent.Status.OFFLINE) for end in _wrap_up_enders)
            or agent_transition(
                agent_id=agent_id,
                allowed_from={Agent.Status.AVAILABLE, Agent.Status.AWAY, Agent.Status.WRAP_UP},
                to_status=Agent.Status.OFFLINE,
            )
        )
        went_offline_at = Agent.objects.filter(pk=agent_id).values_list("status_changed_at", flat=True).get()
    if not is_offline:
        return False
    back_to = Agent.Status.AWAY if status == Agent.Status.AWAY else Agent.Status.AVAILABLE
    gone_mark(agent_id=agent_id, status=back_to, since=went_offline_at)
    if agents_present([agent_id]):  # a tab opened meanwhile, maybe before the mark was there
        agent_comes_back(agent_id=agent_id)
    return True


def agent_comes_back(*, agent_id: int) -> bool:
    """A tab of the agent's opened (or spoke again after going silent): an agent taken offline for
    being gone in the last COMES_BACK_WITHIN_S, and offline ever since, returns to available or
    away, as they were. An agent who chose offline stays offline. Returns whether the agent came
    back."""
    from agents.presence import comes_back_to

    mark = comes_back_to(agent_id=agent_id)
    if mark is None:
        return False
    status, since = mark
    if not Agent.objects.filter(pk=agent_id, status=Agent.Status.OFFLINE, status_changed_at=since).exists():
        return False  # the agent (or a supervisor) set a presence since
    changes = {"missed_offers": 0} if status == Agent.Status.AVAILABLE else {}
    with transaction.atomic():
        return agent_transition(
            agent_id=agent_id, allowed_from={Agent.Status.OFFLINE}, to_status=status, **changes
        )


# --- The supervisor role ------------------------------------------------------------------
#
# The supervisor role: staff users in the `supervisor` group run the floor from the back office.
#
# They review every call (listening to recordings, reading transcripts and summaries masked), see
# charges and the audit trails, and manage agents, queues, skills and business hours. They only look
# at business numbers, templates, rate cards and API keys: numbers and prices come from Meta, and an
# API key can carry more than a supervisor may do here (the `admin` scope reads transcripts unredacted
# and the whole account's billing), so making and revoking keys stays with administrators. Reading
# raw text, erasing personal data and managing users are administrators' permissions too. Agents and
# queues are not deleted by supervisors: reports and past calls keep naming them (an agent leaves the
# floor by leaving its queues; a user account is closed by an administrator).
#
# Every `migrate` (post_migrate, agents.apps) and `manage.py supervisor_group` put the group back to
# exactly this list (after an upgrade that changes it, or a hand edit in admin).

SUPERVISOR_GROUP = "supervisor"
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
    "assistant.add_knowledgeentry",
    "assistant.add_qualificationquestion",
    "assistant.change_assistantsettings",
    "assistant.change_knowledgeentry",
    "assistant.change_qualificationquestion",
    "assistant.delete_knowledgeentry",
    "assistant.delete_qualificationquestion",
    "assistant.view_assistantsettings",
    "assistant.view_knowledgeentry",
    "assistant.view_qualificationquestion",
    "calls.view_call",
    "calls.view_callevent",
    "campaigns.add_optin",
    "campaigns.change_campaign",
    "campaigns.change_optin",
    "campaigns.view_campaign",
    "campaigns.view_optin",
    "campaigns.view_recipient",
    "compliance.view_auditevent",
    "compliance.view_callpermission",
    "compliance.view_consentrecord",
    "integrations.view_apikey",
    "integrations.view_apiwrite",
    "messaging.add_cannedreply",
    "messaging.change_cannedreply",
    "messaging.delete_cannedreply",
    "messaging.view_cannedreply",
    "messaging.view_billingcurrency",
    "messaging.view_charge",
    "messaging.view_contact",
    "messaging.view_conversation",
    "messaging.view_marketingpreference",
    "messaging.view_marketingpreferencechange",
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


def supervisor_group_sync() -> tuple[list[str], list[str]]:
    """Make the supervisor group exist with exactly SUPERVISOR_PERMISSIONS ("app.codename").

    Returns the permissions it gained and those it lost. Raises LookupError, changing nothing,
    when a permission does not exist (its app not migrated yet).
    """
    wanted = set(SUPERVISOR_PERMISSIONS)
    labels = {name.split(".")[0] for name in wanted}
    existing = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in Permission.objects.filter(
            content_type__app_label__in=labels
        ).values_list("pk", "content_type__app_label", "codename")
    }
    missing = wanted - existing.keys()
    if missing:
        raise LookupError(f"These permissions do not exist (migrate first): {', '.join(sorted(missing))}")
    with transaction.atomic():
        group, _ = Group.objects.get_or_create(name=SUPERVISOR_GROUP)
        had = {
            f"{app_label}.{codename}"
            for app_label, codename in group.permissions.values_list("content_type__app_label", "codename")
        }
        group.permissions.set([existing[name] for name in sorted(wanted)])
    return sorted(wanted - had), sorted(had - wanted)


DEMO_ADMIN = "admin"
DEMO_SUPERVISOR = "supervisor"
DEMO_AGENTS = [("agent1", "Amira", "Haddad"), ("agent2", "Bruno", "Costa"), ("agent3", "Chen", "Wei")]
DEMO_QUEUE = "Customer care"
DEMO_NUMBER = {
    "phone_number_id": "100000000000001",
    "waba_id": "200000000000001",
    "display_phone_number": "+44 20 7946 0000",
    "label": "Sandbox line",
}


@transaction.atomic
def demo_data_create() -> dict[str, str]:
    """Create the demo organisation: an administrator, a supervisor, three agents, a queue and a
    sandbox number, each only if it is missing (a demo made before the administrator existed gets one).

    Returns the passwords of the users created now, by username; {} when every one exists already,
    so running it again changes nothing.
    """
    user_model = get_user_model()
    existing = set(
        user_model.objects.filter(
            username__in=[DEMO_ADMIN, DEMO_SUPERVISOR, *(username for username, *_ in DEMO_AGENTS)]
        ).values_list("username", flat=True)
    )
    passwords: dict[str, str] = {}

    if DEMO_ADMIN not in existing:
        passwords[DEMO_ADMIN] = get_random_string(14)
        user_model.objects.create_superuser(
            username=DEMO_ADMIN,
            password=passwords[DEMO_ADMIN],
            email="",
            first_name="Ada",
            last_name="Mensah",
        )
    if DEMO_SUPERVISOR not in existing:
        supervisor_group_sync()
        passwords[DEMO_SUPERVISOR] = get_random_string(14)
        supervisor = user_model.objects.create_user(
            username=DEMO_SUPERVISOR, password=passwords[DEMO_SUPERVISOR], first_name="Sam",
            last_name="Okafor", is_staff=True,
        )  # fmt: skip
        supervisor.groups.add(Group.objects.get(name=SUPERVISOR_GROUP))

    number = BusinessNumber.objects.filter(phone_number_id=DEMO_NUMBER["phone_number_id"]).first()
    if number is None:
        number = BusinessNumber(
            **DEMO_NUMBER, is_sandbox=True, calling_settings=dict(ENABLED_CALLING_SETTINGS)
        )
        number.full_clean()
        number.save()
    queue = Queue.objects.filter(name=DEMO_QUEUE).first()
    if queue is None:
        queue = Queue.objects.create(name=DEMO_QUEUE)
        queue.business_numbers.add(number)
    for username, first_name, last_name in DEMO_AGENTS:
        if username in existing:
            continue
        passwords[username] = get_random_string(14)
        user = user_model.objects.create_user(
            username=username, password=passwords[username], first_name=first_name, last_name=last_name
        )
        agent = Agent.objects.create(user=user)
        QueueMembership.objects.create(queue=queue, agent=agent, priority=1)
    return passwords


def agents_tell_permission_lost(permission_ids: list[int]) -> None:
    """Tell each permission's owner (the agent who asked for it or last called) that the customer
    can no longer be called: revoked after unanswered calls, by Meta, or expired."""
    from compliance.models import CallPermission

    lost = list(
        CallPermission.objects.filter(pk__in=permission_ids, owner__isnull=False).select_related(
            "contact", "business_number"
        )
    )
    agent_of_user = dict(
        Agent.objects.filter(user_id__in={permission.owner_id for permission in lost}).values_list(
            "user_id", "pk"
        )
    )
    for permission in lost:
        agent_id = agent_of_user.get(permission.owner_id)
        if agent_id is None:
            continue
        number, status = permission.business_number.display_phone_number, permission.get_status_display()
        broadcast_on_commit(
            f"agent.{agent_id}",
            {
                "type": "permission.lost",
                "business_number_id": permission.business_number_id,
                "contact": str(permission.contact),
                "business_number": number,
                "status": permission.status,
                "message": f"{permission.contact} can no longer be called from {number}: "
                f"permission {status.lower()}.",
            },
        )
