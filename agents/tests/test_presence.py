"""Presence that heals: an agent is rung only while a tab of theirs says it is there."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from agents.models import Agent
from agents.services import agent_set_status, agents_gone_offline
from agents.tests.factories import AgentFactory
from agents.tests.test_consumers import open_socket

pytestmark = pytest.mark.django_db(transaction=True)

TTL_S = 2


@pytest.fixture
def short_lived_sockets(settings):
    """Sockets that count as open for 2 s after their last heartbeat (asked for every 2/3 s)."""
    settings.AGENT_SOCKET_TTL_S = TTL_S
    settings.AGENT_DISCONNECT_GRACE_S = 1
    return settings


async def status_of(agent: Agent) -> str:
    await sync_to_async(agent.refresh_from_db)()
    return agent.status


async def next_frame(tab) -> dict:
    """The tab's next frame other than the server's presence pings."""
    while True:
        frame = await tab.receive_json_from(timeout=3)
        if frame["type"] != "presence.ping":
            return frame


async def opened(agent: Agent, *, heartbeats: bool = True):
    """A tab of the agent's, open (saying it is there, as the dashboard does on opening), and its
    first frame (presence)."""
    tab = await open_socket(await sync_to_async(lambda: agent.user)())
    connected, _ = await tab.connect()
    assert connected
    if heartbeats:
        await tab.send_json_to({"type": "presence.heartbeat"})
    return tab, await next_frame(tab)


async def answer_pings(tab, count: int) -> None:
    """As the dashboard does: `count` pings, each answered with a heartbeat."""
    for _ in range(count):
        assert await tab.receive_json_from(timeout=3) == {"type": "presence.ping"}
        await tab.send_json_to({"type": "presence.heartbeat"})


async def test_a_tab_that_stops_answering_is_gone_after_its_time_and_its_agent_goes_offline(
    short_lived_sockets,
):
    """Its web process died, or its laptop was closed: the socket never closed, it just stopped
    saying it was there."""
    agent = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    tab, presence = await opened(agent)

    while_fresh = await sync_to_async(agents_gone_offline)()
    await asyncio.sleep(TTL_S + 0.5)  # pings come; none is answered
    once_expired = await sync_to_async(agents_gone_offline)()

    assert presence["heartbeat_s"] == pytest.approx(TTL_S / 3)
    assert (while_fresh, once_expired) == (0, 1)
    assert await status_of(agent) == "offline"
    await tab.disconnect()


async def test_a_tab_that_answers_the_pings_keeps_its_agent(short_lived_sockets):
    agent = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    tab, _ = await opened(agent)

    await answer_pings(tab, 6)  # 4 s: twice the socket's time to live
    await asyncio.sleep(0.1)  # the last heartbeat is in
    taken = await sync_to_async(agents_gone_offline)()

    assert (taken, await status_of(agent)) == (0, "available")
    await tab.disconnect()


async def test_a_tab_that_never_said_it_heartbeats_is_not_taken_for_gone(short_lived_sockets):
    """A page from before heartbeats (still open in a browser across an upgrade) never answers a
    ping: its socket counts as open as it always did, until it closes."""
    agent = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    tab, _ = await opened(agent, heartbeats=False)

    await asyncio.sleep(TTL_S + 0.5)
    taken = await sync_to_async(agents_gone_offline)()

    assert (taken, await status_of(agent)) == (0, "available")
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
    await asyncio.sleep(TTL_S + 0.5)
    await sync_to_async(agents_gone_offline)()
    went = await next_frame(tab)

    await tab.send_json_to({"type": "presence.heartbeat"})
    came = await next_frame(tab)

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


async def test_a_tab_joins_its_groups_again_with_each_heartbeat(short_lived_sockets):
    """A Redis that restarted has forgotten every group (it keeps nothing on disk): the agent's
    rings would reach none of their tabs. The next heartbeat joins them again."""
    from channels.layers import get_channel_layer

    agent = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    tab, _ = await opened(agent)
    layer = get_channel_layer()
    await layer.connection(0).delete(layer._group_key(agent.group_name))  # as after a Redis restart

    await layer.group_send(agent.group_name, {"type": "agent.frames", "frames": [{"type": "lost"}]})
    await answer_pings(tab, 1)
    await asyncio.sleep(0.1)  # the heartbeat is in
    await layer.group_send(agent.group_name, {"type": "agent.frames", "frames": [{"type": "heard"}]})

    assert await next_frame(tab) == {"type": "heard"}
    await tab.disconnect()


async def test_a_tab_a_restarted_redis_forgot_is_rung_again_for_the_call_rung_meanwhile(short_lived_sockets):
    """Redis restarted: the socket and its groups are forgotten until the tab's next heartbeat, so
    a ring sent meanwhile reaches no tab, and would ring out as a missed offer. The heartbeat that
    finds the socket forgotten shows the tab the agent's presence and rings it again."""
    from datetime import timedelta

    from channels.layers import get_channel_layer
    from django.utils import timezone

    from agents import presence
    from calls.models import Call
    from calls.tests.factories import CallFactory

    agent = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    tab, _ = await opened(agent)
    await asyncio.sleep(0.2)  # its opening heartbeat is in
    layer = get_channel_layer()
    await layer.connection(0).delete(layer._group_key(agent.group_name))  # as after a Redis restart
    await sync_to_async(presence._sync_client().delete)(presence._key(agent.pk))

    def rung_meanwhile() -> Call:  # as routing rings: its frames go to a group nobody is in
        Agent.objects.filter(pk=agent.pk).update(status=Agent.Status.RINGING)
        return CallFactory(
            status=Call.Status.OFFERED,
            offered_to=agent,
            offer_expires_at=timezone.now() + timedelta(seconds=15),
        )

    call = await sync_to_async(rung_meanwhile)()
    await tab.send_json_to({"type": "presence.heartbeat"})
    frames = [await next_frame(tab), await next_frame(tab)]
    await tab.disconnect()

    assert (frames[0]["type"], frames[0]["status"]) == ("agent.status", "ringing")
    assert (frames[1]["type"], frames[1]["call_id"]) == ("call.offered", call.pk)
    assert 10 <= frames[1]["ring_timeout_s"] <= 15  # the ring's time left


def test_no_agent_is_taken_for_gone_while_a_restarted_redis_hears_the_tabs_again(settings, monkeypatch):
    """After a Redis restart every agent's set of sockets is empty until their tabs' next
    heartbeats: the sweep waits for a socket's time to live before it believes an empty set."""
    from agents import tasks

    settings.AGENT_SOCKET_TTL_S = 15
    agent = AgentFactory(status=Agent.Status.AVAILABLE)  # no tab has said anything of them yet

    monkeypatch.setattr("core.selectors.redis_uptime_s", lambda: 3.0)
    while_rebuilding = tasks.gone_offline()
    agent.refresh_from_db()
    status_meanwhile = agent.status
    monkeypatch.setattr("core.selectors.redis_uptime_s", lambda: 16.0)
    once_rebuilt = tasks.gone_offline()

    assert (while_rebuilding, status_meanwhile, once_rebuilt) == (0, "available", 1)
