import json

import httpx
import pytest

from assistant import openai, samples
from assistant.decision import ANSWER_FAQ, ASK_QUALIFICATION, HAND_TO_AGENT, OFFER_CALL_BUTTON


@pytest.fixture(autouse=True)
def endpoint(settings):
    settings.ASSISTANT_OPENAI_URL = "https://llm.example/v1"
    settings.ASSISTANT_OPENAI_KEY = "secret"


def completion(content: str) -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda request: httpx.Response(200, json={"choices": [{"message": {"content": content}}]})
    )


def decide_with(transport: httpx.BaseTransport, text: str, *, can_be_called: bool = True):
    with httpx.Client(transport=transport) as client:
        return openai.decide(
            text=text,
            entries=samples.ENTRIES,
            questions=samples.QUESTIONS,
            known_fields={},
            hot_threshold=samples.HOT_THRESHOLD,
            is_first_reply=False,
            can_be_called=can_be_called,
            client=client,
        )


def test_decide_answers_with_the_entry_the_model_chose_and_its_price():
    sent = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(
            200,
            json={"choices": [{"message": {"content": json.dumps({"action": "answer_faq", "entry": 2})}}]},
        )

    decision = decide_with(httpx.MockTransport(answer), "what would pro set me back")

    assert decision.action == ANSWER_FAQ
    assert decision.reply == "The Pro plan includes call recording and reports. Price: €49 per month."
    assert decision.topic == "How much does the Pro plan cost?"
    assert sent[0].url == "https://llm.example/v1/chat/completions"
    assert sent[0].headers["Authorization"] == "Bearer secret"


def test_decide_asks_the_next_qualification_question_when_the_model_says_so():
    decision = decide_with(completion('{"action": "ask_qualification", "entry": null}'), "tell me more")

    assert decision.action == ASK_QUALIFICATION
    assert decision.reply == "Which plan are you interested in: Starter, Pro or Enterprise?"
    assert decision.topic == ""


@pytest.mark.parametrize(
    "transport",
    [
        httpx.MockTransport(lambda request: httpx.Response(500)),
        httpx.MockTransport(
            lambda request: (_ for _ in ()).throw(httpx.ConnectTimeout("slow", request=request))
        ),
        httpx.MockTransport(
            lambda request: (_ for _ in ()).throw(httpx.ConnectError("down", request=request))
        ),
        completion("not json"),
        completion('{"action": "sell_everything"}'),
        completion('{"action": "answer_faq", "entry": 99}'),
        completion('{"action": "answer_faq", "entry": null}'),
    ],
    ids=["http-error", "timeout", "unreachable", "not-json", "unknown-action", "no-such-entry", "no-entry"],
)
def test_decide_falls_back_to_the_offline_decision_when_the_endpoint_fails(transport):
    decision = decide_with(transport, "what are your opening hours")

    assert (decision.action, decision.reason) == (ANSWER_FAQ, "knowledge base")
    assert decision.reply == "We are open Monday to Friday, 9:00 to 17:00."
    assert decision.topic == "What are your opening hours?"


def test_decide_keeps_an_angry_customer_with_a_person_whatever_the_model_says():
    decision = decide_with(completion('{"action": "answer_faq", "entry": 1}'), "this is unacceptable")

    assert decision.action == HAND_TO_AGENT


def test_decide_offers_the_button_not_a_call_back_to_a_customer_who_cannot_be_called():
    decision = decide_with(
        completion('{"action": "hand_to_agent", "entry": null}'),
        "what are your opening hours",
        can_be_called=False,
    )

    assert decision.action == OFFER_CALL_BUTTON
    assert "colleague" not in decision.reply
