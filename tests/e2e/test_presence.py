"""Presence that heals, in the browser: a web process killed mid-shift, a laptop closed."""

import contextlib
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from agents.models import Agent
from agents.tests.factories import PASSWORD, AgentFactory
from tests.e2e.conftest import free_port, sign_in, wait_for, web_process

pytestmark = pytest.mark.e2e

SOCKET_TTL_S = 2


class Link:
    """The network between one agent's laptop and the web server, as a TCP relay on its own port:
    closing the laptop (`close_lid`) stops everything passing either way, and neither end learns
    anything (the server's socket stays open, as it does when a laptop sleeps); opening it again
    (`open_lid`) lets through what waited, and a connection whose server went away meanwhile is
    closed, as the laptop finds out on waking."""

    def __init__(self, server_port: int) -> None:
        self.server_port = server_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.is_open = threading.Event()
        self.is_open.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def close_lid(self) -> None:
        self.is_open.clear()

    def open_lid(self) -> None:
        self.is_open.set()

    def _accept(self) -> None:
        while True:
            try:
                laptop, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.server_port))
            for source, target in ((laptop, server), (server, laptop)):
                threading.Thread(target=self._pass, args=(source, target), daemon=True).start()

    def _pass(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                self.is_open.wait()
                target.sendall(data)
        self.is_open.wait()
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def stop(self) -> None:
        self.listener.close()


def test_a_tab_whose_web_process_died_is_rung_again_and_a_closed_laptop_is_not(
    browser, transactional_db, settings
):
    from agents.models import QueueMembership
    from agents.services import agents_gone_offline
    from agents.tests.factories import QueueFactory
    from calls import routing
    from calls.models import Call, LiveCallCount
    from calls.tests.factories import CallFactory
    from whatsapp.tests.factories import BusinessNumberFactory

    settings.AGENT_SOCKET_TTL_S = SOCKET_TTL_S
    number = BusinessNumberFactory()
    queue = QueueFactory(name="Care")
    queue.business_numbers.add(number)
    # The one whose laptop closes has waited longest: routing would ring her first.
    closed_laptop = AgentFactory(status=Agent.Status.OFFLINE, display_name="Amira Haddad")
    reconnected = AgentFactory(status=Agent.Status.OFFLINE, display_name="Bruno Costa")
    for agent in (closed_laptop, reconnected):
        QueueMembership.objects.create(queue=queue, agent=agent)
    port = free_port()
    environment = {"AGENT_SOCKET_TTL_S": str(SOCKET_TTL_S), "AGENT_DISCONNECT_GRACE_S": "1"}
    url = f"http://127.0.0.1:{port}"

    laptop = Link(port)

    with web_process(port, **environment) as first_process:
        tabs = {}
        for agent in (closed_laptop, reconnected):
            tab = browser.new_context().new_page()
            through = f"http://127.0.0.1:{laptop.port}" if agent == closed_laptop else url
            sign_in(tab, through, agent.user.username, PASSWORD)
            expect(tab.locator("#presence")).to_have_attribute("data-connected", "true")
            tab.click("button[data-status-choice=available]")
            expect(tab.locator("#presence")).to_have_attribute("data-status", "available")
            tabs[agent.pk] = tab
        Agent.objects.filter(pk=closed_laptop.pk).update(status_changed_at=timezone.now().replace(year=2020))
        laptop.close_lid()
        first_process.send_signal(signal.SIGKILL)
        first_process.wait(timeout=5)

    with web_process(port, **environment):
        expect(tabs[reconnected.pk].locator("#presence")).to_have_attribute("data-connected", "true")
        time.sleep(SOCKET_TTL_S + 0.5)  # the dead process's sockets are past their time

        taken = agents_gone_offline()

        closed_laptop.refresh_from_db()
        reconnected.refresh_from_db()
        assert (taken, closed_laptop.status, reconnected.status) == (1, "offline", "available")

        LiveCallCount.objects.create(business_number=number, direction="inbound", live=1)
        call = CallFactory(
            queue=queue, business_number=number, status=Call.Status.QUEUED, media_channel="media.test!1"
        )
        with ThreadPoolExecutor(1) as media_process:  # as the media process would, from its own thread
            media_process.submit(routing.call_waits, call_id=call.pk).result()

        expect(tabs[reconnected.pk].locator("#ring")).to_be_visible()
        call.refresh_from_db()
        assert call.offered_to_id == reconnected.pk

        # The laptop opens again: the tab reconnects, and its agent is back as she was.
        laptop.open_lid()
        expect(tabs[closed_laptop.pk].locator("#presence")).to_have_attribute("data-connected", "true")
        expect(tabs[closed_laptop.pk].locator("#presence")).to_have_attribute("data-status", "available")
        wait_for(lambda: Agent.objects.get(pk=closed_laptop.pk).status == "available", timeout_s=5)
        for tab in tabs.values():
            tab.context.close()
    laptop.stop()
