import pytest

from assistant import samples
from assistant.decision import Entry
from assistant.retrieval import best_entry, chat_text, feature, index_of, words_of


def topic_of(text: str, entries=samples.ENTRIES) -> str:
    position = best_entry(text=text, entries=entries)
    return "" if position is None else entries[position].question


def test_chat_text_spells_out_chat_abbreviations_and_keeps_the_rest():
    assert chat_text("R u open? ppl say ur great 😀") == "are you open? people say your great 😀"


def test_words_of_folds_phrases_and_words_of_one_meaning_into_a_concept():
    assert words_of("How much is it per month?") == ["#price", "#price"]
    assert words_of("can I try it out before paying") == ["#trial", "#trial"]
    assert [feature(word) for word in words_of("Do you take Visa or debit cards?")] == ["#payment"] * 3


def test_index_corrects_one_slip_in_a_word_and_leaves_short_or_far_words_alone():
    index = index_of(tuple((entry.question, entry.answer, entry.price) for entry in samples.ENTRIES))

    assert index.corrected("tiral") == "trial"
    assert index.corrected("hubsopt") == "hubspot"
    assert index.corrected("pizza") == "pizza"
    assert index.corrected("opn") == "opn"


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("do u open sundays", "What are your opening hours?"),
        ("what time do you shut on weekdays", "What are your opening hours?"),
        ("what do you charge for pro", "How much does the Pro plan cost?"),
        ("starter package fee?", "How much does the Starter plan cost?"),
        ("can we test it for free first", "Do you offer a free trial?"),
        ("do you take mastercard", "Which payment methods do you accept?"),
        ("do you do sepa", "Which payment methods do you accept?"),
        ("can i pay yearly instead of monthly", "Which payment methods do you accept?"),
        ("am I tied into a contract", "Can I cancel my subscription any time?"),
        ("can I drop by your offices", "Where is your office?"),
        ("does it work with zoho", "Do you integrate with Salesforce or HubSpot?"),
        ("salesforse connector?", "Do you integrate with Salesforce or HubSpot?"),
    ],
)
def test_best_entry_finds_paraphrases_synonyms_and_typos(text, topic):
    assert topic_of(text) == topic


@pytest.mark.parametrize(
    "text", ["what time is it in tokyo", "is the bakery next door open late", "do you sell pizza", "ok"]
)
def test_best_entry_keeps_a_message_mostly_about_something_else_unanswered(text):
    assert topic_of(text) == ""


def test_best_entry_matches_the_answer_and_price_too_not_only_the_question():
    entries = [
        Entry("Is there a discount for charities?", "Registered charities get 30% off every plan."),
        Entry("Can you port my number?", "Yes, we move your existing number for you.", "€10 once"),
    ]

    assert topic_of("can I keep my existing number", entries) == "Can you port my number?"
    assert topic_of("we're a registered charity", entries) == "Is there a discount for charities?"


def test_best_entry_finds_one_entry_among_two_hundred_and_builds_their_index_once():
    entries = [Entry(f"Do you support language number {n}?", f"Yes, language {n} works.") for n in range(199)]
    entries.append(Entry("Can I export my call recordings?", "Yes, as MP3 files from the recordings page."))
    index_of.cache_clear()

    first = topic_of("how do I download recordings as mp3", entries)
    second = topic_of("export recordings?", entries)

    assert (first, second) == ("Can I export my call recordings?", "Can I export my call recordings?")
    assert index_of.cache_info().misses == 1
