"""Every log line written while a call's work runs names the call (core.logs); LOG_FORMAT=json
writes each line as one JSON object."""

import asyncio
import json
import logging

import pytest
from asgiref.sync import sync_to_async
from celery.signals import task_postrun, task_prerun
from django.conf import settings

from agents import consumers
from agents.models import Agent
from agents.tests.factories import AgentFactory
from agents.tests.test_consumers import open_socket
from calls.media import MediaProcess
from core.logs import CallFilter, about_call


class Lines(logging.Handler):
    """The lines a logger writes, as the console writes them with LOG_FORMAT=json."""

    def __init__(self) -> None:
        super().__init__()
        options = {key: value for key, value in settings.LOGGING["formatters"]["json"].items() if key != "()"}
        from pythonjsonlogger.json import JsonFormatter

        self.setFormatter(JsonFormatter(**options))
        self.addFilter(CallFilter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines():
    handler = Lines()
    logger = logging.getLogger("switchboard.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)


log = logging.getLogger("switchboard.test")


def test_a_line_about_a_call_carries_its_id_and_others_do_not(lines):
    with about_call(42):
        log.info("ringing")
    log.info("idle")
    with about_call("42; drop table"):  # not a call's id: ignored
        log.info("bad frame")

    assert [(line["message"], line.get("call_id")) for line in lines] == [
        ("ringing", 42),
        ("idle", None),
        ("bad frame", None),
    ]
    assert {"time", "level", "logger"} <= set(lines[0])
    assert (lines[0]["level"], lines[0]["logger"]) == ("INFO", "switchboard.test")


def test_a_task_given_a_call_logs_about_it_until_it_ends(lines):
    task_prerun.send(sender=None, task_id="t1", task=None, args=(), kwargs={"call_id": 7})
    log.info("ring timed out")
    task_postrun.send(sender=None, task_id="t1", task=None, args=(), kwargs={"call_id": 7})
    log.info("next task")

    assert [line.get("call_id") for line in lines] == [7, None]


async def test_the_media_process_logs_a_calls_message_and_what_it_starts_for_the_call_about_it(lines):
    started = []

    async def handle(message: dict) -> None:
        log.info("answering")

        async def later() -> None:
            await asyncio.sleep(0.01)
            log.info("leg closed")

        started.append(asyncio.create_task(later()))

    process = MediaProcess(handlers={"call.answer": handle})
    await process.dispatch({"type": "call.answer", "call_id": 31})
    await asyncio.gather(*started)
    log.info("between calls")

    assert [(line["message"], line.get("call_id")) for line in lines] == [
        ("answering", 31),
        ("leg closed", 31),
        ("between calls", None),
    ]


@pytest.mark.django_db(transaction=True)
async def test_an_agents_frame_about_a_call_is_logged_about_it(lines):
    def handler(*, agent_id: int, frame: dict, within) -> None:
        log.info("accepted")

    consumers.frame_handler_register("test.logged", handler)
    agent = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    tab = await open_socket(await sync_to_async(lambda: agent.user)())
    try:
        await tab.connect()
        await tab.receive_json_from(timeout=2)
        await tab.send_json_to({"type": "test.logged", "call_id": 12})
        await tab.receive_nothing(timeout=0.3)
    finally:
        await tab.disconnect()
        del consumers._frame_handlers["test.logged"]

    assert [(line["message"], line.get("call_id")) for line in lines] == [("accepted", 12)]


@pytest.fixture
def service_lines():
    handler = Lines()
    logger = logging.getLogger("whatsapp.services")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


@pytest.mark.django_db
def test_the_handling_of_metas_event_about_a_call_logs_with_metas_id_for_the_call(lines, service_lines):
    """A webhook names a call by Meta's id (`Call.wa_call_id` keeps it): what its handling writes
    carries it, its failure included; an event about no call carries none."""
    from types import SimpleNamespace

    from whatsapp.services import _run_handler

    def failing(event) -> None:
        log.info("ending the call")
        raise RuntimeError("the database went away")

    terminate = SimpleNamespace(
        kind="call.terminate", idempotency_key="call.terminate:wacid.A", call_id="wacid.A"
    )
    status = SimpleNamespace(kind="message.status", idempotency_key="message.status:wamid.B")
    _run_handler(failing, terminate)
    _run_handler(lambda event: log.info("delivered"), status)

    assert [(line["message"], line.get("wa_call_id")) for line in lines] == [
        ("ending the call", "wacid.A"),
        ("delivered", None),
    ]
    [failure] = service_lines
    assert failure["wa_call_id"] == "wacid.A" and "failed" in failure["message"]
