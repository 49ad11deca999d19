"""A call in one paragraph: scripted calls through the local backend, and the openai backend
against a fake OpenAI-compatible endpoint on this machine."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from recordings.summaries import CallFacts, CallSummary, Line, summarise

CUSTOMER, AGENT = "customer", "agent"


def conversation(*turns: tuple[str, str]) -> list[Line]:
    return [Line(speaker=speaker, text=text, start_s=4.0 * n) for n, (speaker, text) in enumerate(turns)]


def facts(**overrides) -> CallFacts:
    return CallFacts(
        **{
            "direction": "inbound",
            "talk_seconds": 252,
            "end_reason": "completed",
            "ended_by": "customer",
            "disposition": "",
            "notes": "",
            "customer_name": "Lucia",
            **overrides,
        }
    )


UPGRADE = conversation(
    (AGENT, "Thanks for calling, this is Sam. How can I help you today?"),
    (CUSTOMER, "Hi Sam. I'd like to upgrade my plan, I keep running out of data."),
    (AGENT, "Sure. The Premium plan has unlimited data for 25 euros a month. Would you like that?"),
    (CUSTOMER, "Yes, that sounds great."),
    (AGENT, "Done. I've upgraded you to the Premium plan at 25 euros a month, from today. You're all set."),
    (CUSTOMER, "Perfect, thank you so much!"),
)
COMPLAINT = conversation(
    (AGENT, "Good afternoon, how can I help?"),
    (CUSTOMER, "My order was supposed to arrive last week and it still hasn't come."),
    (AGENT, "I'm sorry to hear that. Can I have the order number?"),
    (CUSTOMER, "It's 4417. This is ridiculous, I've called three times already."),
    (AGENT, "I can see it is held at the depot."),
    (CUSTOMER, "Honestly, this is the worst service I've ever had. I'm really angry."),
)
WRONG_NUMBER = conversation(
    (AGENT, "Hello, Acme support, how can I help?"),
    (CUSTOMER, "Oh, sorry, I think I dialed the wrong number."),
    (AGENT, "No problem, have a nice day."),
    (CUSTOMER, "You too, bye."),
)
BILLING = conversation(
    (AGENT, "Hello, billing team, how can I help?"),
    (CUSTOMER, "Hi, I was charged twice on my last bill and I'd like to know why."),
    (AGENT, "Let me look. Yes, the March payment was taken twice."),
    (AGENT, "I've refunded the extra charge, it will be back on your card in three days. You're all set."),
    (CUSTOMER, "Great, thanks, that's all I needed."),
)


# --- The local backend ----------------------------------------------------------------------


def test_local_summary_of_an_upgrade_that_closes_is_a_sale_with_a_positive_customer():
    summary = summarise(lines=UPGRADE, facts=facts(), backend="local")

    assert (summary.intent, summary.outcome, summary.sentiment) == ("upgrade", "sale", "positive")
    assert summary.paragraph == (
        "Lucia called about an upgrade. "
        "Lucia said: \u201cI'd like to upgrade my plan, I keep running out of data.\u201d "
        "The agent closed the sale: \u201cI've upgraded you to the Premium plan at 25 euros a month, "
        "from today.\u201d "
        "Lucia sounded positive. (4 min 12 s, ended by the customer.)"
    )
    assert (summary.backend, summary.note) == ("local", "")


def test_local_summary_of_an_angry_late_delivery_is_a_negative_complaint():
    summary = summarise(
        lines=COMPLAINT, facts=facts(customer_name="", talk_seconds=95, ended_by="agent"), backend="local"
    )

    assert (summary.intent, summary.outcome, summary.sentiment) == ("complaint", "unresolved", "negative")
    assert summary.sentiment_score < -0.3
    assert summary.paragraph == (
        "The customer called to complain. "
        "The customer said: \u201cHonestly, this is the worst service I've ever had.\u201d "
        "The call ended without a recorded resolution. "
        "The customer sounded negative. (1 min 35 s, ended by the agent.)"
    )


def test_local_summary_of_a_wrong_number_says_so_without_counting_it_against_the_caller():
    summary = summarise(lines=WRONG_NUMBER, facts=facts(talk_seconds=8), backend="local")

    assert (summary.intent, summary.outcome, summary.sentiment) == ("wrong_number", "wrong_number", "neutral")
    assert summary.paragraph == (
        "Lucia had dialled the wrong number. "
        "Lucia said: \u201cOh, sorry, I think I dialed the wrong number.\u201d "
        "Lucia sounded neutral. (8 s, ended by the customer.)"
    )


def test_local_summary_of_a_wrong_number_filed_by_the_agent_is_a_wrong_number():
    lines = conversation((AGENT, "Hello, how can I help?"), (CUSTOMER, "Is that the pizzeria on Main St?"))

    summary = summarise(lines=lines, facts=facts(disposition="wrong_number", talk_seconds=6), backend="local")

    assert (summary.intent, summary.outcome) == ("wrong_number", "wrong_number")


def test_local_summary_of_a_caller_who_left_the_queue_tells_the_facts_alone():
    abandoned = facts(talk_seconds=None, end_reason="abandoned", customer_name="")

    summary = summarise(lines=[], facts=abandoned, backend="local")

    assert summary == CallSummary(
        paragraph="The caller hung up while waiting in the queue.",
        intent="",
        outcome="no_conversation",
        sentiment="",
        sentiment_score=None,
        backend="local",
    )


# What the recording of a call nobody answered holds: the queue's notice and hold audio on the
# business's side, and the customer alone on theirs.
ON_HOLD = conversation(
    (AGENT, "Thank you for calling Acme. This call is recorded to help us serve you better."),
    (AGENT, "All our agents are busy. Your call is very important to us, please stay on the line."),
    (CUSTOMER, "Hello? I just want to know where my package is. Great, wonderful, thanks a lot."),
    (AGENT, "Thank you for waiting. We will be with you shortly, we appreciate your patience."),
)


@pytest.mark.parametrize(
    ("end_reason", "direction", "paragraph"),
    [
        ("abandoned", "inbound", "Lucia hung up while waiting in the queue. (ended by the customer.)"),
        (
            "no_agent",
            "inbound",
            "Lucia waited in the queue, but no agent answered before the longest allowed wait. "
            "(ended by the customer.)",
        ),
        ("rejected", "outbound", "The call was rejected by the customer. (ended by the customer.)"),
        ("unanswered", "outbound", "Lucia did not answer. (ended by the customer.)"),
        ("failed", "inbound", "The call failed before it reached an agent. (ended by the customer.)"),
    ],
)
def test_local_summary_of_a_call_nobody_answered_has_no_intent_and_no_sentiment(
    end_reason, direction, paragraph
):
    nobody_answered = facts(talk_seconds=None, end_reason=end_reason, direction=direction)

    summary = summarise(lines=ON_HOLD, facts=nobody_answered, backend="local")

    assert summary == CallSummary(
        paragraph=paragraph,
        intent="",
        outcome="no_conversation",
        sentiment="",
        sentiment_score=None,
        backend="local",
    )


def test_local_summary_of_an_unanswered_outbound_call_names_the_customer():
    unanswered = facts(direction="outbound", talk_seconds=None, end_reason="unanswered", ended_by="system")

    summary = summarise(lines=[], facts=unanswered, backend="local")

    assert (summary.paragraph, summary.outcome) == ("Lucia did not answer.", "no_conversation")


def test_local_summary_of_a_billing_question_refunded_is_resolved_with_the_agents_notes():
    resolved = facts(disposition="resolved", notes="Refunded the duplicate March payment.")

    summary = summarise(lines=BILLING, facts=resolved, backend="local")

    assert (summary.intent, summary.outcome, summary.sentiment) == ("billing", "resolved", "positive")
    assert summary.paragraph == (
        "Lucia called with a billing question. "
        "Lucia said: \u201cHi, I was charged twice on my last bill and I'd like to know why.\u201d "
        "The agent resolved the request: \u201cI've refunded the extra charge, it will be back on your card "
        "in three days.\u201d "
        "Agent\u2019s notes: \u201cRefunded the duplicate March payment.\u201d "
        "Lucia sounded positive. (4 min 12 s, ended by the customer.)"
    )


def test_local_summary_follows_the_agents_disposition_over_the_closing_words():
    summary = summarise(lines=BILLING, facts=facts(disposition="escalated"), backend="local")

    assert (summary.intent, summary.outcome) == ("billing", "escalated")


def test_local_summary_of_an_outbound_call_promising_a_call_back_needs_a_follow_up():
    lines = conversation(
        (AGENT, "Hi Lucia, I'm calling about the router you reported as not working."),
        (CUSTOMER, "Yes, it still keeps dropping the wifi every evening."),
        (AGENT, "I'll check with our engineers and call you back tomorrow morning."),
        (CUSTOMER, "Okay, thanks."),
    )

    summary = summarise(lines=lines, facts=facts(direction="outbound", talk_seconds=61), backend="local")

    assert (summary.intent, summary.outcome) == ("technical_support", "follow_up")
    assert summary.paragraph.startswith(
        "The agent called Lucia; the conversation was about a technical problem. "
    )


WHAT_CUSTOMERS_SAY = [  # (what the customer said after the agent's greeting, the intent)
    ("I would like a refund\u2026 the package arrived damaged", "refund"),
    ("I returned the shoes two weeks ago and I still haven't got my money back.", "refund"),
    ("Hi, I'd like to cancel my subscription, please.", "cancellation"),
    ("I want to close my account, I'm switching providers.", "cancellation"),
    ("I don't want to cancel my plan, I'd like to upgrade it.", "upgrade"),
    ("I keep running out of data, can you move me to a higher plan?", "upgrade"),
    ("Where is my order? It was supposed to be delivered on Monday.", "order_status"),
    ("My parcel hasn't arrived yet, can you check the tracking?", "order_status"),
    ("I'm not calling to complain, I'd just like to know when it will be delivered.", "order_status"),
    ("I was charged twice on my last bill.", "billing"),
    ("Why is there a late payment fee on my invoice?", "billing"),
    ("This is the third time I'm calling, your service is unacceptable.", "complaint"),
    ("The headphones came broken and I want a replacement.", "complaint"),
    ("I'd like to buy the new phone, is it in stock?", "purchase"),
    ("My internet stopped working this morning and the router keeps restarting.", "technical_support"),
    ("What are your opening hours on Saturday?", "information"),
    ("Sorry, I think I dialed the wrong number.", "wrong_number"),
    ("Hello? Can you hear me?", "other"),
]


@pytest.mark.parametrize(("said", "intent"), WHAT_CUSTOMERS_SAY)
def test_local_summary_names_the_intent_the_customer_says(said, intent):
    lines = conversation((AGENT, "Thanks for calling, how can I help?"), (CUSTOMER, said))

    summary = summarise(lines=lines, facts=facts(), backend="local")

    assert summary.intent == intent


def test_summary_uses_the_configured_backend_and_refuses_an_unknown_one(settings):
    settings.SUMMARY_BACKEND = "local"

    summary = summarise(lines=UPGRADE, facts=facts())

    assert summary.backend == "local"
    with pytest.raises(ValueError):
        summarise(lines=UPGRADE, facts=facts(), backend="oracle")


# --- The openai backend, against a fake endpoint ----------------------------------------------

VALID_REPLY = {
    "paragraph": "Lucia upgraded to the Premium plan at 25 euros a month and was pleased.",
    "intent": "upgrade",
    "outcome": "sale",
    "sentiment": "positive",
    "sentiment_score": 0.8,
}


class FakeEndpoint:
    """An OpenAI-compatible chat-completions endpoint that records what it was sent and answers
    with the reply a test scripted."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.delay_s = 0.0
        self.answer_with(json.dumps(VALID_REPLY))

    def answer_with(self, content: str, status: int = 200) -> None:
        self.status = status
        completion = {"object": "chat.completion", "choices": [{"index": 0, "message": {"content": content}}]}
        self.body = json.dumps(completion).encode()


@pytest.fixture
def endpoint(settings):
    fake = FakeEndpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            fake.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
            time.sleep(fake.delay_s)
            try:
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(fake.body)))
                self.end_headers()
                self.wfile.write(fake.body)
            except OSError:  # the client gave up waiting
                pass

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    settings.SUMMARY_OPENAI_URL = f"http://127.0.0.1:{server.server_port}/v1"
    settings.SUMMARY_OPENAI_KEY = "sk-test-key"
    settings.SUMMARY_OPENAI_MODEL = "summary-model"
    settings.SUMMARY_OPENAI_TIMEOUT_S = 5.0
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


def test_openai_summary_sends_the_transcript_and_facts_and_uses_a_valid_reply(endpoint):
    summary = summarise(lines=UPGRADE, facts=facts(), backend="openai")

    assert summary == CallSummary(
        paragraph="Lucia upgraded to the Premium plan at 25 euros a month and was pleased.",
        intent="upgrade",
        outcome="sale",
        sentiment="positive",
        sentiment_score=0.8,
        backend="openai",
    )
    [request] = endpoint.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test-key"
    sent = request["json"]
    assert (sent["model"], sent["temperature"], sent["response_format"]) == (
        "summary-model",
        0,
        {"type": "json_object"},
    )
    assert [message["role"] for message in sent["messages"]] == ["system", "user"]
    assert "technical_support" in sent["messages"][0]["content"]
    user = sent["messages"][1]["content"]
    assert "Customer: Hi Sam. I'd like to upgrade my plan, I keep running out of data.\n" in user
    assert "Agent: Thanks for calling, this is Sam. How can I help you today?\n" in user
    assert "Customer's name: Lucia" in user
    assert "Talk time: 252 s" in user


def test_openai_summary_with_bad_json_falls_back_to_the_local_one(endpoint):
    endpoint.answer_with("Sure! Here is the summary: {paragraph: ...")

    summary = summarise(lines=UPGRADE, facts=facts(), backend="openai")

    assert (summary.backend, summary.note) == (
        "local",
        "openai backend failed (invalid JSON from the endpoint); local summary",
    )
    assert summary.paragraph == summarise(lines=UPGRADE, facts=facts(), backend="local").paragraph


def test_openai_summary_with_an_intent_outside_the_vocabulary_falls_back_to_the_local_one(endpoint):
    endpoint.answer_with(json.dumps({**VALID_REPLY, "intent": "plan_change"}))

    summary = summarise(lines=UPGRADE, facts=facts(), backend="openai")

    assert (summary.backend, summary.intent, summary.note) == (
        "local",
        "upgrade",
        "openai backend failed (invalid intent from the endpoint); local summary",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("sentiment_score", 1.5), ("sentiment_score", True), ("paragraph", ""), ("paragraph", "x" * 1201)],
)
def test_openai_summary_with_an_invalid_field_falls_back_to_the_local_one(endpoint, field, value):
    endpoint.answer_with(json.dumps({**VALID_REPLY, field: value}))

    summary = summarise(lines=UPGRADE, facts=facts(), backend="openai")

    assert summary.backend == "local"
    assert summary.note.startswith("openai backend failed (")


def test_openai_summary_after_a_server_error_falls_back_to_the_local_one(endpoint):
    endpoint.answer_with('{"error": {"message": "overloaded"}}', status=500)

    summary = summarise(lines=UPGRADE, facts=facts(), backend="openai")

    assert (summary.backend, summary.outcome, summary.note) == (
        "local",
        "sale",
        "openai backend failed (HTTP 500 from the endpoint); local summary",
    )


def test_openai_summary_that_takes_too_long_falls_back_to_the_local_one(endpoint, settings):
    endpoint.delay_s = 0.5
    settings.SUMMARY_OPENAI_TIMEOUT_S = 0.1

    summary = summarise(lines=UPGRADE, facts=facts(), backend="openai")

    assert (summary.backend, summary.note) == (
        "local",
        "openai backend failed (the endpoint timed out); local summary",
    )


def test_openai_summary_when_the_endpoint_refuses_the_connection_falls_back_to_the_local_one(settings):
    with socket.socket() as bound_but_not_listening:
        bound_but_not_listening.bind(("127.0.0.1", 0))
        settings.SUMMARY_OPENAI_URL = f"http://127.0.0.1:{bound_but_not_listening.getsockname()[1]}/v1"
        settings.SUMMARY_OPENAI_TIMEOUT_S = 5.0

        summary = summarise(lines=UPGRADE, facts=facts(), backend="openai")

    assert (summary.backend, summary.note) == (
        "local",
        "openai backend failed (could not reach the endpoint: ConnectError); local summary",
    )


def test_openai_summary_of_a_call_nobody_answered_is_the_local_one_without_asking(endpoint):
    abandoned = facts(talk_seconds=None, end_reason="abandoned")

    summary = summarise(lines=ON_HOLD, facts=abandoned, backend="openai")

    assert (summary.backend, summary.intent, summary.outcome, summary.sentiment, summary.note) == (
        "local",
        "",
        "no_conversation",
        "",
        "no conversation with an agent; local summary",
    )
    assert endpoint.requests == []


def test_openai_summary_that_finds_no_conversation_has_no_intent_and_no_sentiment(endpoint):
    endpoint.answer_with(json.dumps({**VALID_REPLY, "outcome": "no_conversation"}))

    summary = summarise(lines=UPGRADE, facts=facts(), backend="openai")

    assert (summary.backend, summary.intent, summary.sentiment, summary.sentiment_score) == (
        "openai",
        "",
        "",
        None,
    )


def test_openai_summary_of_an_empty_transcript_is_the_local_one_without_asking(endpoint):
    abandoned = facts(talk_seconds=None, end_reason="abandoned")

    summary = summarise(lines=[], facts=abandoned, backend="openai")

    assert (summary.backend, summary.outcome, summary.note) == (
        "local",
        "no_conversation",
        "empty transcript; local summary",
    )
    assert endpoint.requests == []
