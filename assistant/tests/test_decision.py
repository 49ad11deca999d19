import pytest

from assistant import samples
from assistant.decision import (
    ANSWER_FAQ,
    ASK_QUALIFICATION,
    HAND_TO_AGENT,
    OFFER_CALL_BUTTON,
    UNKNOWN,
    Mood,
    decide,
    lead_fields_of,
    lead_score,
    mood_of,
    wants_person,
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


def test_decide_names_the_knowledge_base_question_it_answers_as_the_topic():
    answered = decide_sample("hw much is the starter pkg per month?")
    asked = decide_sample("hi")

    assert (answered.action, answered.topic) == (ANSWER_FAQ, "How much does the Starter plan cost?")
    assert (asked.action, asked.topic) == (ASK_QUALIFICATION, "")


@pytest.mark.parametrize(
    "text",
    [
        "this is a joke 🤬",
        "omg wtf",
        "i'm not happy at all",
        "you billed me twice this month",
        "no one has answered my messages for two days",
        "STILL NO ANSWER??",
        "why is this broken again!!",
        "you took money from my account without asking",
        "sooo done with you people",
        "stop wasting my time",
        "are you serious?? this is taking forever",
    ],
)
def test_mood_of_reads_anger_from_words_emoji_and_two_weak_signs(text):
    assert mood_of(text) == Mood.ANGRY


@pytest.mark.parametrize(
    "text", ["thanks so much!!", "WE NEED FIFTY SEATS", "tell me a joke", "why should we choose you?"]
)
def test_mood_of_keeps_one_weak_sign_or_a_harmless_word_calm(text):
    assert mood_of(text) == Mood.CALM


@pytest.mark.parametrize(
    "text",
    [
        "can i chat with one of your sales reps",
        "transfer me to support pls",
        "whats the best number to ring you on",
        "can someone from your team phone me",
        "are you a bot?",
        "get me in touch with a manager",
        "can someone go through it with me over the phone",
        "hello? is there anybody there?",
    ],
)
def test_decide_hands_over_a_customer_asking_for_a_person_however_put(text):
    assert decide_sample(text).action == HAND_TO_AGENT


@pytest.mark.parametrize(
    "text", ["does it talk to hubspot", "our support team cannot keep up", "my sales team is tiny"]
)
def test_wants_person_does_not_read_software_or_the_customers_own_staff_as_asking_for_a_person(text):
    assert wants_person(text) is False


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("2 ppl, maybe 3", {"team_size": "2"}),
        ("we're a team of six", {"team_size": "6"}),
        ("need 40 licences for pro", {"plan": "pro", "team_size": "40"}),
        ("just me for the moment", {"team_size": "1"}),
        ("we'd like to go live by friday", {"timeline": "go live by friday"}),
        ("maybe after the summer", {"timeline": "after the summer"}),
        ("sometime in october", {"timeline": "in october"}),
        ("later this year", {"timeline": "later this year"}),
        ("we are a small business", {}),
    ],
)
def test_lead_fields_of_reads_sizes_and_dates_as_people_write_them(text, fields):
    assert lead_fields_of(text) == fields


def test_lead_score_weighs_a_commitment_above_a_wish_to_buy():
    assert lead_score(fields={}, text="ok let's do it") == 65
    assert lead_score(fields={}, text="we want to buy it") == 35
    assert lead_score(fields={"timeline": "by friday"}, text="") == 30
    assert lead_score(fields={"timeline": "after the summer"}, text="") == 15


@pytest.mark.parametrize(
    "text",
    [
        "let's do it, 5 ppl",
        "ready to pay, pro plan",
        "sign us up, we start on monday with 4 people",
        "we need 12 seats and want to go live this week",
        "ready when you are, 3 users",
        "deal. enterprise from monday",
    ],
)
def test_decide_offers_the_button_to_a_committed_lead_with_one_more_fact(text):
    assert decide_sample(text).action == OFFER_CALL_BUTTON


@pytest.mark.parametrize(
    "text",
    [
        "just browsing for now",
        "we're comparing a few tools",
        "I run a small physio practice and we miss lots of calls",
        "maybe in the spring",
        "is this suitable for a small agency?",
        "so many calls we can't answer",
        "which plan is right for us, starter or pro?",
    ],
)
def test_decide_qualifies_a_customer_who_explores_or_tells_about_their_business(text):
    assert decide_sample(text).action == ASK_QUALIFICATION


def test_decide_does_not_take_an_errand_for_a_purchase():
    assert decide_sample("can you order me a taxi").action == UNKNOWN


def test_decide_hands_an_unanswerable_question_to_a_colleague_even_with_a_lead_field_in_it():
    decision = decide_sample("will it rain tomorrow?")

    assert (decision.action, decision.lead_fields) == (UNKNOWN, {"timeline": "tomorrow"})


def test_a_lead_who_has_answered_every_question_but_is_not_hot_goes_to_a_person_with_thanks():
    chosen = decide(
        text="next month",
        entries=samples.ENTRIES,
        questions=samples.QUESTIONS,
        known_fields={"plan": "pro", "team_size": "5"},
        hot_threshold=samples.HOT_THRESHOLD,
        is_first_reply=False,
    )

    assert (chosen.action, chosen.reason) == (HAND_TO_AGENT, "qualified")
    assert chosen.reply.startswith("Thank you, that is all I needed.")
    assert "do not know" not in chosen.reply
