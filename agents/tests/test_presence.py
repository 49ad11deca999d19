"""Presence that heals: an agent is rung only while a tab of theirs says it is there."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from agents.models import Agent
from agents.services import agent_set_status, agents_gone_offline
from agents.tests.factories import AgentFactory
from agents.tests.test_consumers import open_socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def short_lived_sockets(settings):
    """Sockets that count as open for 1 s after their last heartbeat (a heartbeat every 1/3 s)."""
    settings.AGENT_SOCKET_TTL_S = 1
    settings.AGENT_DISCONNECT_GRACE_S = 1
    return settings


async def status_of(agent: Agent) -> str:
    await sync_to_async(agent.refresh_from_db)()
    return agent.status


async def opened(agent: Agent):
    """A tab of the agent's, open, its first frame (presence) read."""
    tab = await open_socket(await sync_to_async(lambda: agent.user)())
    connected, _ = await tab.connect()
    assert connected
    return tab, await tab.receive_json_from(timeout=2)


async def test_a_tab_that_goes_silent_is_gone_after_its_time_and_its_agent_goes_offline(short_lived_sockets):
    """Its web process died, or its laptop was closed: the socket never closed, it just stopped
    saying it was there."""
    agent = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    tab, presence = await opened(agent)

    while_fresh = await sync_to_async(agents_gone_offline)()
    await asyncio.sleep(1.2)
    once_expired = await sync_to_async(agents_gone_offline)()

    assert presence["heartbeat_s"] == pytest.approx(1 / 3)
    assert (while_fresh, once_expired) == (0, 1)
    assert await status_of(agent) == "offline"
    await tab.disconnect()


async def test_a_tab_that_keeps_saying_it_is_there_keeps_its_agent(short_lived_sockets):
    agent = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    tab, presence = await opened(agent)

    for _ in range(6):
        await asyncio.sleep(presence["heartbeat_s"])
        await tab.send_json_to({"type": "presence.heartbeat"})
    await asyncio.sleep(0.1)  # the last heartbeat is in
    taken = await sync_to_async(agents_gone_offline)()

    assert (taken, await status_of(agent)) == (0, "available")
    assert await tab.receive_nothing(timeout=0.1)  # a heartbeat has no answer
    await tab.disconnect()


async def test_an_agent_taken_offline_for_being_gone_comes_back_as_they_were_when_a_tab_opens(
    short_lived_sockets,
):
    """A web process died and the tab reconnected to another one after the agent's sockets
    expired: the agent is available again without a click, or away if they were away."""
    available = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    away = await sync_to_async(AgentFactory)(status=Agent.Status.AWAY)
    taken = await sync_to_async(agents_gone_offline)()  # no tab of theirs is open

    offline = (await status_of(available), await status_of(away))
    first_tab, first_presence = await opened(available)
    second_tab, second_presence = await opened(away)

    assert (taken, offline) == (2, ("offline", "offline"))
    assert (first_presence["status"], second_presence["status"]) == ("available", "away")
    assert (await status_of(available), await status_of(away)) == ("available", "away")
    await first_tab.disconnect()
    await second_tab.disconnect()


async def test_an_agent_who_chose_offline_or_changed_since_stays_offline_when_a_tab_opens(
    short_lived_sockets,
):
    chose = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    await sync_to_async(agent_set_status)(agent_id=chose.pk, status="offline")
    changed = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    await sync_to_async(agents_gone_offline)()
    await sync_to_async(agent_set_status)(agent_id=changed.pk, status="away")
    await sync_to_async(agent_set_status)(agent_id=changed.pk, status="offline")

    first_tab, first_presence = await opened(chose)
    second_tab, second_presence = await opened(changed)

    assert (first_presence["status"], second_presence["status"]) == ("offline", "offline")
    await first_tab.disconnect()
    await second_tab.disconnect()


async def test_a_silent_tab_that_speaks_again_brings_its_agent_back(short_lived_sockets):
    """A laptop closed past the socket's time, then opened: the socket survived, the agent had
    been taken offline; its next heartbeat brings them back."""
    agent = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    tab, _ = await opened(agent)
    await asyncio.sleep(1.2)
    await sync_to_async(agents_gone_offline)()
    went = await tab.receive_json_from(timeout=2)

    await tab.send_json_to({"type": "presence.heartbeat"})
    came = await tab.receive_json_from(timeout=2)

    assert (went["status"], came["status"]) == ("offline", "available")
    assert await status_of(agent) == "available"
    await tab.disconnect()


async def test_a_reload_within_the_grace_keeps_the_agent(short_lived_sockets):
    """The last tab closed and reopened at once: the sweep meanwhile leaves the agent alone."""
    short_lived_sockets.AGENT_DISCONNECT_GRACE_S = 30
    agent = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    tab, _ = await opened(agent)
    await tab.disconnect()

    taken_while_reloading = await sync_to_async(agents_gone_offline)()

    assert (taken_while_reloading, await status_of(agent)) == (0, "available")
