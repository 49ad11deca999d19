"""Scripted chats of simulated customers against a business that answers by rule, over the sandbox's
real webhooks and Graph API (the product plays no part: these hold the sandbox to its word)."""

import asyncio
import json
import socket
import time

import httpx
import pytest
from aiohttp import web

from whatsapp.events import CallConnect, MessageReceived, parse_delivery
from whatsapp.sandbox import chats
from whatsapp.sandbox.load import add_crowd, keep_chatting
from whatsapp.sandbox.server import SandboxThread
from whatsapp.services import webhook_signature_is_valid

TOKEN, SECRET = "chat-token", "chat-secret"
NUMBER_ID, WABA_ID = "5000001", "6000001"
CUSTOMER = "447700900321"
BUTTON_PAYLOAD = "hot-lead"


def call_button(text: str) -> dict:
    return {
        "type": "interactive",
        "interactive": {
            "type": "voice_call",
            "body": {"text": text},
            "action": {
                "name": "voice_call",
                "parameters": {"display_text": "Call us", "ttl_minutes": 60, "payload": BUTTON_PAYLOAD},
            },
        },
    }


def text(body: str) -> dict:
    return {"type": "text", "text": {"preview_url": False, "body": body}}


def answers(customer_text: str) -> list[dict]:
    """The business's replies to a customer's text, in order (none to what it does not know)."""
    said = customer_text.lower()
    if "how much is the pro plan" in said:
        return [text("The Pro plan is €49 per month.")]
    if "looking at your product" in said:
        return [text("Welcome! Which plan are you interested in: Starter, Pro or Enterprise?")]
    if said == "the pro plan":
        return [text("Good choice. How many people are in your team?")]
    if "buy" in said or "call me" in said:
        return [text("You can call us now, free."), call_button("Tap to call us")]
    if "25 people" in said:
        return [text("Thank you."), text("When would you like to start?")]
    if said == "next month":
        return [text("Thanks, a colleague will be in touch.")]
    if "talk to someone" in said or "ridiculous" in said:
        return [text("I am passing you to a colleague now.")]
    return []


class Business:
    """Receives the sandbox's webhooks (checks the signature, answers 200 at once), then replies to
    each customer text through the sandbox's Graph API, as `answers` says."""

    def __init__(self, *, port: int, graph_url: str) -> None:
        self.port, self.graph_url = port, graph_url
        self.deliveries: list[dict] = []
        self.send_statuses: list[int] = []
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhooks/whatsapp/", self.webhook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        self.http = httpx.AsyncClient(
            base_url=self.graph_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.http.aclose()
        await self.runner.cleanup()

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get("X-Hub-Signature-256")
        if not webhook_signature_is_valid(body=body, signature=signature, app_secret=SECRET):
            return web.Response(status=403)
        payload = json.loads(body)
        self.deliveries.append(payload)
        for event in parse_delivery(payload).events:
            if isinstance(event, MessageReceived) and event.message_type == "text":
                task = asyncio.get_running_loop().create_task(self.reply(event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return web.Response(text="OK")

    async def reply(self, event: MessageReceived) -> None:
        for content in answers(event.text):
            body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": event.from_number}
            response = await self.http.post(f"/{event.phone_number_id}/messages", json=body | content)
            self.send_statuses.append(response.status_code)

    def events(self, kind: type) -> list:
        return [event for payload in self.deliveries for event in parse_delivery(payload).events
                if isinstance(event, kind)]  # fmt: skip


def wait_for(predicate, timeout_s: float = 10.0):
    """The predicate's first truthy result (the webhooks of what a chat did arrive a moment later)."""
    deadline = time.monotonic() + timeout_s
    while not (result := predicate()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def world(settings):
    """The sandbox, with one number, delivering to a business that replies."""
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    settings.MEDIA_ICE_SERVERS = []
    port = free_port()
    thread = SandboxThread(
        webhook_url=f"http://127.0.0.1:{port}/webhooks/whatsapp/", app_secret=SECRET, token=TOKEN
    )
    with thread as sandbox:
        sandbox.add_number(
            phone_number_id=NUMBER_ID, waba_id=WABA_ID, display_phone_number="+44 20 7946 0321"
        )
        business = Business(port=port, graph_url=sandbox.graph_url)
        thread.run(business.start)
        yield thread, business
        for customer in sandbox.customers:  # their hang-ups are delivered before the business goes
            thread.run(customer.close)
        thread.run(sandbox.sender.drain)
        thread.run(business.stop)


def hold_chat(world, script: chats.ChatScript, *, wa_id: str = CUSTOMER, **options) -> chats.Chat:
    thread, _ = world
    customer = thread.call(thread.sandbox.add_customer, wa_id=wa_id, name="Nadia Brooks")
    return thread.run(customer.chat, NUMBER_ID, script, timeout_s=30, **{"reply_timeout_s": 5, **options})


def said(chat: chats.Chat) -> list[tuple[str, str, str]]:
    return [(entry.sender, entry.kind, entry.text) for entry in chat.transcript]


def test_chat_faq_gets_the_answer_and_its_webhook_is_metas(world):
    _, business = world

    chat = hold_chat(world, chats.FAQ)

    assert said(chat) == [
        ("customer", "text", "How much is the Pro plan?"),
        ("business", "text", "The Pro plan is €49 per month."),
    ]
    assert chat.outcome == chats.FINISHED
    [value] = [
        payload["entry"][0]["changes"][0]["value"]
        for payload in business.deliveries
        if "messages" in payload["entry"][0]["changes"][0]["value"]
    ]
    [message] = value["messages"]
    assert value["metadata"] == {"display_phone_number": "442079460321", "phone_number_id": NUMBER_ID}
    assert value["contacts"] == [{"profile": {"name": "Nadia Brooks"}, "wa_id": CUSTOMER}]
    assert message == {
        "from": CUSTOMER,
        "id": chat.transcript[0].message_id,
        "timestamp": message["timestamp"],
        "type": "text",
        "text": {"body": "How much is the Pro plan?"},
    }
    assert message["id"].startswith("wamid.")
    assert message["timestamp"].isdigit()
    assert business.send_statuses == [200]


def test_chat_qualification_answers_what_each_question_asks(world):
    chat = hold_chat(world, chats.QUALIFICATION)

    assert [entry.text for entry in chat.transcript if entry.sender == "customer"] == [
        "Hi, I am looking at your product",
        "The Pro plan",
        "We are 25 people",
        "Next month",
    ]
    assert [entry.text for entry in chat.replies][-3:] == [
        "Thank you.",
        "When would you like to start?",
        "Thanks, a colleague will be in touch.",
    ]
    assert chat.outcome == chats.FINISHED


@pytest.mark.parametrize("script", [chats.ASKS_FOR_PERSON, chats.ANGRY], ids=lambda script: script.name)
def test_chat_asking_for_a_person_or_angry_gets_handed_over(world, script):
    chat = hold_chat(world, script)

    assert said(chat) == [
        ("customer", "text", script.lines[0]),
        ("business", "text", "I am passing you to a colleague now."),
    ]
    assert chat.outcome == chats.FINISHED


def test_chat_hot_lead_taps_the_call_button_and_calls_with_its_payload(world):
    _, business = world

    chat = hold_chat(world, chats.HOT_LEAD)

    assert said(chat)[:3] == [
        ("customer", "text", "We want to buy the Pro plan for 25 people this week"),
        ("business", "text", "You can call us now, free."),
        ("business", "call_button", "Tap to call us"),
    ]
    assert chat.outcome == chats.CALLED
    [connect] = wait_for(lambda: business.events(CallConnect))
    assert said(chat)[3] == ("customer", "call", BUTTON_PAYLOAD)
    assert chat.transcript[3].message_id == connect.call_id
    assert (connect.direction, connect.from_number, connect.cta_payload) == (
        "USER_INITIATED",
        CUSTOMER,
        BUTTON_PAYLOAD,
    )


def test_chat_red_list_customer_is_of_a_blocked_country_and_calls_in_with_the_button(world, settings):
    thread, business = world
    [customer] = thread.call(
        add_crowd, thread.sandbox, count=1, regions=sorted(settings.OUTBOUND_BLOCKED_COUNTRIES)
    )

    chat = thread.run(customer.chat, NUMBER_ID, chats.RED_LIST, reply_timeout_s=5)

    assert customer.country in settings.OUTBOUND_BLOCKED_COUNTRIES
    assert [entry.kind for entry in chat.transcript] == ["text", "text", "call_button", "call"]
    assert chat.outcome == chats.CALLED
    [connect] = wait_for(lambda: business.events(CallConnect))
    assert (connect.from_number, connect.cta_payload) == (customer.wa_id, BUTTON_PAYLOAD)


def test_chat_without_a_reply_ends_after_the_timeout(world):
    script = chats.ChatScript(name="off_topic", lines=("Who won the football last night?",))

    chat = hold_chat(world, script, reply_timeout_s=0.3)

    assert said(chat) == [("customer", "text", "Who won the football last night?")]
    assert chat.outcome == chats.NO_REPLY


def test_chat_hot_lead_that_does_not_tap_finishes_with_the_button_in_its_transcript(world):
    script = chats.ChatScript(name="window_shopper", lines=chats.HOT_LEAD.lines)

    chat = hold_chat(world, script)

    assert [entry.kind for entry in chat.replies] == ["text", "call_button"]
    assert chat.outcome == chats.FINISHED
    assert chat.call is None


def test_chat_one_at_a_time_per_number(world):
    thread, _ = world
    customer = thread.call(thread.sandbox.add_customer, wa_id=CUSTOMER, name="Nadia Brooks")
    script = chats.ChatScript(name="waits", lines=("Anyone there?",))
    thread.call(customer.start_chat, NUMBER_ID, script, reply_timeout_s=5)

    with pytest.raises(ValueError, match="already chatting"):
        thread.call(customer.start_chat, NUMBER_ID, chats.FAQ)


def test_keep_chatting_starts_chats_and_gives_red_list_customers_their_script(world, settings):
    thread, business = world
    red_list = frozenset(settings.OUTBOUND_BLOCKED_COUNTRIES)
    crowd = thread.call(add_crowd, thread.sandbox, count=3) + thread.call(
        add_crowd, thread.sandbox, count=1, seed=4, regions=sorted(red_list)
    )

    async def chat_for(seconds: float) -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        await keep_chatting(
            crowd, [NUMBER_ID], chats_per_minute=600, stop=stop, red_list_regions=red_list, reply_timeout_s=2
        )

    thread.run(chat_for, 0.45)

    started = [(customer, chat) for customer in crowd for chat in customer.chats]
    assert all(customer.chats for customer in crowd)  # 5 starts, each by a customer not chatting
    assert {chat.script.name for customer, chat in started if customer.country in red_list} == {"red_list"}
    others = {chat.script.name for customer, chat in started if customer.country not in red_list}
    assert others and "red_list" not in others
    assert wait_for(lambda: len(business.events(MessageReceived)) >= 4)
