"""The back office's people: the supervisor group has exactly its permissions (made by every
migrate, put back by a command); supervisors manage agents, queues and business hours, look at
numbers, prices, keys and the audit, and reach nothing else; agents do not reach the back office."""

import json

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Agent, AgentStatusEvent, Queue, Skill
from agents.tests.factories import AgentFactory, QueueFactory, QueueMembershipFactory, UserFactory
from calls.models import CallEvent
from calls.tests.factories import CallFactory
from integrations.models import ApiKey
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db

SUPERVISOR_PERMISSIONS = [
    "agents.add_agent",
    "agents.add_queue",
    "agents.add_queuemembership",
    "agents.add_skill",
    "agents.change_agent",
    "agents.change_queue",
    "agents.change_queuemembership",
    "agents.change_skill",
    "agents.delete_queuemembership",
    "agents.delete_skill",
    "agents.view_agent",
    "agents.view_agentstatusevent",
    "agents.view_queue",
    "agents.view_queuemembership",
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
    "messaging.view_billingcurrency",
    "messaging.view_cannedreply",
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
]


def opening(day: str, opens: str, closes: str) -> str:
    return json.dumps([{"day": day, "open": opens, "close": closes}])


HOURS = opening("MONDAY", "09:00", "17:00")


def group_permissions() -> list[str]:
    group = Group.objects.get(name="supervisor")
    return sorted(f"{app}.{codename}" for app, codename in group.permissions.values_list(
        "content_type__app_label", "codename"
    ))  # fmt: skip


def supervisor():
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="supervisor"))
    return user


def queue_form(**changes) -> dict:
    return {
        "name": "Care", "strategy": "longest_idle", "ring_timeout_s": 20, "max_wait_s": 180, "wrap_up_s": 30,
        "missed_offers_before_away": 2, "timezone": "Europe/London", "weekly_hours": HOURS,
        "holidays": '["2026-12-25"]', "closed_message": "We are closed.", "language": "en",
        "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0, **changes,
    }  # fmt: skip


def test_migrating_gives_the_supervisor_group_exactly_these_permissions():
    assert group_permissions() == SUPERVISOR_PERMISSIONS


def test_the_command_puts_the_group_back_to_exactly_its_permissions(capsys):
    group = Group.objects.get(name="supervisor")
    group.permissions.remove(Permission.objects.get(codename="listen_recording"))
    group.permissions.add(Permission.objects.get(codename="view_raw_transcript"))

    call_command("supervisor_group")

    assert group_permissions() == SUPERVISOR_PERMISSIONS
    assert capsys.readouterr().out.splitlines() == [
        "+ recordings.listen_recording",
        "- recordings.view_raw_transcript",
        "The supervisor group has its 58 permissions (1 added, 1 removed).",
    ]


def test_the_command_makes_the_group_when_it_is_missing():
    Group.objects.filter(name="supervisor").delete()

    call_command("supervisor_group")

    assert group_permissions() == SUPERVISOR_PERMISSIONS


@pytest.mark.parametrize(
    "url", ["/admin/", "/admin/calls/call/", "/admin/agents/agent/", "/admin/core/signinlockout/"]
)
def test_an_agent_does_not_reach_the_back_office(client, url):
    client.force_login(AgentFactory().user)

    response = client.get(url)

    assert (response.status_code, response["Location"].split("?")[0]) == (302, "/admin/login/")


@pytest.mark.parametrize(
    "url",
    [
        "/admin/calls/call/",
        "/admin/calls/callevent/",
        "/admin/recordings/recording/",
        "/admin/recordings/summary/",
        "/admin/recordings/erasure/",
        "/admin/messaging/charge/",
        "/admin/messaging/contact/",
        "/admin/messaging/message/",
        "/admin/messaging/template/",
        "/admin/messaging/ratecard/",
        "/admin/messaging/rateregion/",
        "/admin/messaging/billingcurrency/",
        "/admin/compliance/auditevent/",
        "/admin/compliance/callpermission/",
        "/admin/compliance/consentrecord/",
        "/admin/agents/agent/",
        "/admin/agents/agentstatusevent/",
        "/admin/agents/queue/",
        "/admin/agents/skill/",
        "/admin/agents/queue/add/",
        "/admin/agents/skill/add/",
        "/admin/whatsapp/businessnumber/",
        "/admin/integrations/apikey/",
        "/admin/integrations/apiwrite/",
    ],
)
def test_a_supervisor_opens_the_pages_of_their_work(client, url):
    client.force_login(supervisor())

    assert client.get(url).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/admin/auth/user/",
        "/admin/auth/group/",
        "/admin/whatsapp/webhookdelivery/",
        "/admin/whatsapp/webhookevent/",
        "/admin/whatsapp/businessnumber/add/",
        "/admin/integrations/apikey/add/",
        "/admin/integrations/webhooksubscription/",
        "/admin/integrations/eventdelivery/",
        "/admin/messaging/template/add/",
        "/admin/messaging/ratecard/add/",
        "/admin/messaging/conversationwindow/",
        "/admin/calls/livecallcount/",
        "/admin/core/signinlockout/",
    ],
)
def test_a_supervisor_does_not_open_an_administrators_pages(client, url):
    client.force_login(supervisor())

    assert client.get(url).status_code == 403


def test_a_supervisor_cannot_revoke_an_api_key(client):
    key = ApiKey.objects.create(name="CRM", prefix="sbk_test", secret_hash="0" * 64, scopes=["read"])
    client.force_login(supervisor())

    client.post("/admin/integrations/apikey/", {"action": "revoke", "_selected_action": [key.pk]})

    key.refresh_from_db()
    assert key.revoked_at is None


def test_a_supervisor_sets_a_queues_business_hours(client):
    number = BusinessNumberFactory()
    client.force_login(supervisor())

    response = client.post("/admin/agents/queue/add/", queue_form(business_numbers=[number.pk]))

    queue = Queue.objects.get(name="Care")
    assert response.status_code == 302
    assert (queue.timezone, queue.weekly_hours, queue.holidays) == (
        "Europe/London",
        [{"day": "MONDAY", "open": "09:00", "close": "17:00"}],
        ["2026-12-25"],
    )
    assert list(queue.business_numbers.all()) == [number]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"timezone": "Mars/Olympus"}, "&#x27;Mars/Olympus&#x27; is not a time zone"),
        ({"weekly_hours": '{"MONDAY": "9-5"}'}, "Write a list"),
        ({"weekly_hours": opening("Monday", "09:00", "17:00")}, "Opening 1: the day is one of"),
        ({"weekly_hours": opening("MONDAY", "9:00", "17:00")}, "Opening 1: it opens at"),
        ({"weekly_hours": opening("MONDAY", "18:00", "17:00")}, "Opening 1: it closes after it opens"),
        ({"weekly_hours": opening("MONDAY", "09:00", "24:30")}, "Opening 1: it closes at HH:MM"),
        ({"weekly_hours": '[{"day": "MONDAY", "open": "09:00"}]'}, "Opening 1: write"),
        ({"holidays": '["25/12/2026"]'}, "is not a date written YYYY-MM-DD"),
    ],
)
def test_business_hours_routing_could_not_read_are_refused(client, changes, error):
    client.force_login(supervisor())

    response = client.post("/admin/agents/queue/add/", queue_form(**changes))

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Queue.objects.exists()


def test_hours_until_midnight_are_accepted(client):
    client.force_login(supervisor())

    client.post(
        "/admin/agents/queue/add/",
        queue_form(weekly_hours=opening("FRIDAY", "18:00", "24:00")),
    )

    assert Queue.objects.get().weekly_hours == [{"day": "FRIDAY", "open": "18:00", "close": "24:00"}]


def test_a_supervisor_puts_an_agent_in_a_queue_and_sets_the_chat_limit(client):
    agent, queue = AgentFactory(), QueueFactory()
    client.force_login(supervisor())

    response = client.post(
        f"/admin/agents/agent/{agent.pk}/change/",
        {
            "user": agent.user_id, "display_name": "Amira", "skills": [], "chat_limit": 5, "chat_count": 4,
            "memberships-TOTAL_FORMS": 1, "memberships-INITIAL_FORMS": 0,
            "memberships-0-queue": queue.pk, "memberships-0-priority": 2,
        },
    )  # fmt: skip

    agent.refresh_from_db()
    assert response.status_code == 302
    # The chats the agent holds are counted by the inbox, never typed in.
    assert (agent.display_name, agent.chat_limit, agent.chat_count) == ("Amira", 5, 0)
    assert list(agent.memberships.values_list("queue_id", "priority")) == [(queue.pk, 2)]


def test_a_supervisor_does_not_delete_agents_or_queues(client):
    agent, queue = AgentFactory(), QueueFactory()
    client.force_login(supervisor())

    agent_deleted = client.post(f"/admin/agents/agent/{agent.pk}/delete/", {"post": "yes"})
    queue_deleted = client.post(f"/admin/agents/queue/{queue.pk}/delete/", {"post": "yes"})

    assert (agent_deleted.status_code, queue_deleted.status_code) == (403, 403)
    assert (Agent.objects.count(), Queue.objects.count()) == (1, 1)


@pytest.mark.parametrize("url", ["/admin/agents/agentstatusevent/", "/admin/calls/callevent/"])
def test_the_histories_of_agents_and_calls_are_read_only_even_for_administrators(admin_client, url):
    agent = AgentFactory()
    if "agentstatusevent" in url:
        event = AgentStatusEvent.objects.create(
            agent=agent, previous_status="offline", status="available", changed_at=timezone.now()
        )
    else:
        event = CallEvent.objects.create(call=CallFactory(), to_status="queued", at=timezone.now())

    changed = admin_client.post(f"{url}{event.pk}/change/", {"status": "away", "to_status": "ended"})
    deleted = admin_client.post(f"{url}{event.pk}/delete/", {"post": "yes"})

    assert (changed.status_code, deleted.status_code) == (403, 403)
    assert type(event).objects.filter(pk=event.pk).count() == 1


def agents_in_queues(count: int) -> None:
    for _ in range(count):
        membership = QueueMembershipFactory(queue=QueueFactory(), agent=AgentFactory())
        membership.queue.business_numbers.add(BusinessNumberFactory())
        skill = Skill.objects.create(name=f"Skill {membership.pk}")
        membership.agent.skills.add(skill)
        membership.queue.required_skills.add(skill)
        AgentStatusEvent.objects.create(
            agent=membership.agent, previous_status="offline", status="available", changed_at=timezone.now()
        )


@pytest.mark.parametrize("model", ["agent", "queue", "skill", "agentstatusevent"])
def test_the_lists_take_as_many_queries_for_20_rows_as_for_1(client, model):
    url = f"/admin/agents/{model}/"
    client.force_login(supervisor())
    client.get(url)
    agents_in_queues(1)

    with CaptureQueriesContext(connection) as one:
        first = client.get(url)
    agents_in_queues(19)
    with CaptureQueriesContext(connection) as twenty:
        second = client.get(url)

    assert (first.context["cl"].result_count, second.context["cl"].result_count) == (1, 20)
    assert len(twenty) == len(one)


def test_an_administrator_revokes_a_key_but_does_not_delete_it(admin_client):
    key = ApiKey.objects.create(name="CRM", prefix="sbk_test", secret_hash="0" * 64, scopes=["read"])

    page = admin_client.get(f"/admin/integrations/apikey/{key.pk}/delete/")
    chosen = {"action": "delete_selected", "_selected_action": [key.pk], "post": "yes"}
    admin_client.post("/admin/integrations/apikey/", chosen)

    assert page.status_code == 403
    assert ApiKey.objects.filter(pk=key.pk).exists()
