import datetime

import pytest
from django.utils import timezone

from agents.models import Agent, AgentStatusEvent
from agents.selectors import agent_day
from agents.templatetags.agent_day import clock
from agents.tests.factories import AgentFactory
from calls.models import Call
from calls.tests.factories import CallFactory
from messaging.models import Conversation
from messaging.tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 3, 4, 10, 0, tzinfo=datetime.UTC)


def at(clock_time: str, *, day: int = 4) -> datetime.datetime:
    hours, minutes = map(int, clock_time.split(":"))
    return NOW.replace(day=day, hour=hours, minute=minutes)


def status_change(agent, previous: str, status: str, when: datetime.datetime) -> None:
    AgentStatusEvent.objects.create(agent=agent, previous_status=previous, status=status, changed_at=when)


def test_agent_day_counts_only_the_agents_own_figures_of_today(settings, django_assert_num_queries):
    settings.TIME_ZONE = "UTC"
    agent, colleague = AgentFactory(), AgentFactory()
    status_change(agent, "offline", "available", at("22:00", day=3))  # yesterday: counts from midnight
    status_change(agent, "available", "ringing", at("08:00"))
    status_change(agent, "ringing", "on_call", at("08:00").replace(second=20))
    status_change(agent, "on_call", "wrap_up", at("08:30"))
    status_change(agent, "wrap_up", "away", at("08:31"))
    status_change(colleague, "offline", "available", at("07:00"))
    CallFactory(agent=agent, status=Call.Status.ENDED, connected_at=at("08:00"))
    CallFactory(agent=agent, status=Call.Status.ENDED, connected_at=at("23:00", day=3))  # yesterday
    CallFactory(agent=agent, status=Call.Status.QUEUED, connected_at=None)
    CallFactory(agent=colleague, status=Call.Status.ENDED, connected_at=at("09:00"))
    ConversationFactory(agent=agent, state=Conversation.State.CLOSED, closed_at=at("09:10"))
    ConversationFactory(agent=agent, state=Conversation.State.CLOSED, closed_at=at("20:00", day=3))
    ConversationFactory(agent=agent, state=Conversation.State.ASSIGNED)
    ConversationFactory(agent=colleague, state=Conversation.State.CLOSED, closed_at=at("09:20"))

    with django_assert_num_queries(4):
        day = agent_day(agent_id=agent.pk, now=NOW)

    assert (day.calls_taken, day.chats_closed) == (1, 1)
    # Available 00:00-08:00, ringing 20 s, on a call 08:00:20-08:30, wrap-up 1 min, away since 08:31.
    assert day.status_seconds == {
        "available": 28800.0, "ringing": 20.0, "on_call": 1780.0, "wrap_up": 60.0, "away": 5340.0,
    }  # fmt: skip
    labels = [label for _, label, _ in day.status_rows]
    assert labels == ["Available", "Ringing", "On a call", "Wrap-up", "Away"]


def test_agent_day_of_an_agent_with_no_history_is_empty(settings):
    settings.TIME_ZONE = "UTC"
    agent = AgentFactory(status=Agent.Status.OFFLINE)

    day = agent_day(agent_id=agent.pk, now=timezone.now())

    assert (day.calls_taken, day.chats_closed, day.status_seconds, day.status_rows) == (0, 0, {}, [])


def test_clock_reads_durations_for_people():
    assert [clock(30), clock(60 * 12), clock(3600 + 5 * 60)] == ["under a minute", "12 min", "1 h 05 min"]
