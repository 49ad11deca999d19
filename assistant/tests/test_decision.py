import pytest

from assistant import samples
from assistant.decision import (
    ANSWER_FAQ,
    ASK_QUALIFICATION,
    HAND_TO_AGENT,
    OFFER_CALL_BUTTON,
    UNKNOWN,
    decide,
    lead_fields_of,
    lead_score,
)


def decide_sample(text: str, *, known_fields=None, can_be_called=True, is_first_reply=False):
    return decide(
        text=text,
        entries=samples.ENTRIES,
        questions=samples.QUESTIONS,
        known_fields=known_fields or {},
        hot_threshold=samples.HOT_THRESHOLD,
        is_first_reply=is_first_reply,
        can_be_called=can_be_called,
    )


@pytest.mark.parametrize(("category", "text", "action"), samples.LABELLED)
def test_decide_chooses_the_labelled_action(category, text, action):
    decision = decide_sample(text)

    assert (category, decision.action) == (category, action)


def test_the_labelled_set_covers_every_category_with_forty_messages():
    categories = {category for category, _, _ in samples.LABELLED}

    assert len(samples.LABELLED) >= 40
    assert categories == {"faq", "qualification", "hot", "person", "angry", "off-topic"}


def test_decide_quotes_the_price_of_the_knowledge_base_entry_only():
    decision = decide_sample("how much does the pro plan cost")

    assert decision.reply == "The Pro plan includes call recording and reports. Price: €49 per month."


def test_decide_quotes_no_price_for_an_entry_without_one():
    decision = decide_sample("what are your opening hours")

    assert decision.reply == "We are open Monday to Friday, 9:00 to 17:00."


def test_decide_says_it_is_an_assistant_in_its_first_reply():
    decision = decide_sample("what are your opening hours", is_first_reply=True)

    assert decision.reply.startswith("Hi, I am the business's automated assistant. ")


def test_decide_asks_the_next_unanswered_qualification_question():
    decision = decide_sample("we are 5 people", known_fields={"plan": "pro"})

    assert decision.action == ASK_QUALIFICATION
    assert decision.reply == "When would you like to start?"
    assert decision.lead_fields == {"plan": "pro", "team_size": "5"}


def test_decide_makes_a_lead_hot_from_what_it_said_before():
    decision = decide_sample("this week", known_fields={"plan": "enterprise", "team_size": "40"})

    assert decision.action == OFFER_CALL_BUTTON
    assert decision.score == 75


@pytest.mark.parametrize(
    "text", ["I want to speak to someone", "This is ridiculous", "What's the weather like in Paris?"]
)
def test_decide_offers_a_customer_who_cannot_be_called_the_button_never_a_call_back(text):
    decision = decide_sample(text, can_be_called=False)

    assert decision.action == OFFER_CALL_BUTTON
    assert "colleague" not in decision.reply


def test_decide_hands_over_an_angry_customer_before_answering():
    decision = decide_sample("how much does the pro plan cost?? this is unacceptable")

    assert decision.action == HAND_TO_AGENT


def test_decide_does_not_answer_what_the_knowledge_base_does_not_hold():
    decision = decide(
        text="how much does the pro plan cost",
        entries=[],
        questions=[],
        known_fields={},
        hot_threshold=70,
        is_first_reply=False,
    )

    assert decision.action == UNKNOWN
    assert "€" not in decision.reply


def test_lead_fields_of_reads_plan_team_size_and_timeline():
    assert lead_fields_of("The Pro plan for 12 users, next month") == {
        "plan": "pro",
        "team_size": "12",
        "timeline": "next month",
    }


def test_lead_score_weighs_size_urgency_and_intent():
    assert lead_score(fields={}, text="hello") == 0
    assert lead_score(fields={"plan": "pro", "team_size": "20", "timeline": "asap"}, text="buy") == 100
    assert lead_score(fields={"team_size": "3", "timeline": "next year"}, text="") == 25


def test_answer_faq_is_chosen_on_a_close_question():
    assert decide_sample("opening hours please").action == ANSWER_FAQ
