"""Personal data masked out of transcripts and summaries, and everyday numbers left as spoken."""

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recordings.redaction import PiiSpan, pii_spans, redact

REGIONS = [None, "US", "GB", "DE", "ES", "BR", "IN"]


def luhn_check_digit(body: str) -> str:
    """The digit that makes `body` followed by it pass the Luhn check."""
    total = 0
    for position, digit in enumerate(reversed(body)):
        value = int(digit)
        if position % 2 == 0:  # every second digit from the right, counting the check digit as first
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str(-total % 10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card is 4111 1111 1111 1111 thanks", "my card is [card] thanks"),
        ("my card is 5555-5555-5555-4444 thanks", "my card is [card] thanks"),
        ("my card is 4111111111111111.", "my card is [card]."),
        ("amex 3782 822463 10005 please", "amex [card] please"),
        ("card 4222222222222, expiry 12 28", "card [card], expiry 12 28"),
        ("order 4521 4111 1111 1111 1111 expiry 12 28", "order 4521 [card] expiry 12 28"),
        ("card 4" + "9" * 17 + luhn_check_digit("4" + "9" * 17), "card [card]"),
    ],
)
def test_redact_masks_luhn_valid_card_numbers(text, expected):
    redacted = redact(text)

    assert redacted == expected


@pytest.mark.parametrize(
    "text",
    [
        "my card is 4111 1111 1111 1112 thanks",
        "my card is 5555-5555-5555-4445 thanks",
        "amex 3782 822463 10006 please",
        "reference 0000 0000 0000 0000",
        "too long 41111111111111111111",
        "too short 4111 1111 1117",
        "not a decimal 4111111111111111.5",
    ],
)
def test_redact_leaves_digit_runs_that_are_not_card_numbers(text):
    redacted = redact(text)

    assert redacted == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jo.smith@example.com please", "write to [email] please"),
        ("it is Ana+calls@mail.example.co.uk.", "it is [email]."),
        ("either a_b@x.io or c-d@y.org", "either [email] or [email]"),
        ("jo dot smith at example dot com", "jo dot smith at example dot com"),
        ("we were @ the shop at 10", "we were @ the shop at 10"),
    ],
)
def test_redact_masks_email_addresses(text, expected):
    redacted = redact(text)

    assert redacted == expected


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("call +44 20 7946 0958 today", None, "call [phone] today"),
        ("call 0044 20 7946 0958 today", None, "call [phone] today"),
        ("call 0044 20 7946 0958 today", "US", "call [phone] today"),
        ("call +1 415-555-2671 today", None, "call [phone] today"),
        ("ligue +55 11 98765-4321 amanhã", None, "ligue [phone] amanhã"),
        ("call 011 44 20 7946 0958 today", "US", "call [phone] today"),
        ("call 020 7946 0958 today", "GB", "call [phone] today"),
        ("text 07911 123456 today", "gb", "text [phone] today"),
        ("call (415) 555-2671 today", "US", "call [phone] today"),
        ("call 2079460958 today", "GB", "call [phone] today"),
        ("call 020 7946 0958 today", None, "call 020 7946 0958 today"),
        ("call (415) 555-2671 today", None, "call (415) 555-2671 today"),
        ("call +44 20 7946 095 today", None, "call +44 20 7946 095 today"),
        ("call +1 415-555-267 today", None, "call +1 415-555-267 today"),
    ],
)
def test_redact_masks_valid_phone_numbers(text, region, expected):
    redacted = redact(text, region=region)

    assert redacted == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ssn 123-45-6789.", "ssn [national id]."),
        ("NI AB 12 34 56 C", "NI [national id]"),
        ("NI AB123456C", "NI [national id]"),
        ("CPF 123.456.789-09", "CPF [national id]"),
        ("CPF 12345678909", "CPF [national id]"),
        ("DNI 12345678Z", "DNI [national id]"),
        ("DNI 12345678-Z", "DNI [national id]"),
        ("NIE X1234567L", "NIE [national id]"),
        ("Aadhaar 2345 6789 0124", "Aadhaar [national id]"),
        ("Aadhaar 2345-6789-0124", "Aadhaar [national id]"),
        ("Aadhaar 234567890124", "Aadhaar [national id]"),
    ],
)
def test_redact_masks_verified_national_ids(text, expected):
    redacted = redact(text)

    assert redacted == expected


@pytest.mark.parametrize(
    "text",
    [
        "ssn 000-45-6789",
        "ssn 666-45-6789",
        "ssn 912-45-6789",
        "ssn 123-00-6789",
        "ssn 123-45-0000",
        "ssn 123 45 6789",
        "NI QQ123456C",
        "NI AO123456C",
        "NI GB123456A",
        "NI AB123456E",
        "CPF 123.456.789-08",
        "CPF 12345678919",
        "CPF 111.111.111-11",
        "DNI 12345678A",
        "NIE X1234567A",
        "Aadhaar 2345 6789 0123",
        "Aadhaar 1345 6789 0124",
    ],
)
def test_redact_leaves_national_ids_with_wrong_check_or_allocation(text):
    redacted = redact(text)

    assert redacted == text


@pytest.mark.parametrize(
    "text",
    [
        "your order 4521 has shipped",
        "ticket 88213 is closed",
        "that is $49.99 a month",
        "it cost 1,200 euros",
        "it cost 1,200.50 euros",
        "delivery on 2026-11-27",
        "delivery on 27/11/2026",
        "call back at 10:30",
        "we opened in 2026 and 1998",
        "I have 3 kids and 12 cats",
        "extension 4521, floor 12, room 345",
    ],
)
def test_redact_leaves_everyday_numbers_in_every_region(text):
    redacted = {region: redact(text, region=region) for region in REGIONS}

    assert redacted == dict.fromkeys(REGIONS, text)


def test_pii_spans_finds_every_kind_sorted_by_start():
    text = "Card 4111 1111 1111 1111, email jo@example.com, call +44 20 7946 0958, SSN 123-45-6789."

    spans = pii_spans(text)

    assert spans == [
        PiiSpan(5, 24, "card"),
        PiiSpan(32, 46, "email"),
        PiiSpan(53, 69, "phone"),
        PiiSpan(75, 86, "national_id"),
    ]


def test_pii_spans_prefers_a_card_over_the_phone_number_it_could_also_be():
    card = "card 4999 6228 3038 8365"
    not_a_card = "card 4999 6228 3038 8364"

    spans = pii_spans(card, region="DE")
    spans_without_luhn = pii_spans(not_a_card, region="DE")

    assert spans == [PiiSpan(5, 24, "card")]
    assert spans_without_luhn == [PiiSpan(5, 24, "phone")]


def test_pii_spans_prefers_a_verified_national_id_over_a_phone_number():
    cpf = "CPF 123.456.789-09"
    not_a_cpf = "CPF 123.456.789-08"

    spans = pii_spans(cpf, region="US")
    spans_without_check = pii_spans(not_a_cpf, region="US")

    assert spans == [PiiSpan(4, 18, "national_id")]
    assert spans_without_check == [PiiSpan(4, 18, "phone")]


def test_redact_masks_numbers_inside_an_email_address_as_the_address():
    text = "write to 4111111111111111@example.com or jo.447911123456@example.com"

    redacted = redact(text, region="GB")

    assert redacted == "write to [email] or [email]"


def test_redact_without_personal_data_returns_the_text_unchanged():
    text = "Thanks for calling, your order 4521 ships on 27/11/2026."

    redacted = redact(text)

    assert redacted == text


words = st.text(alphabet=string.ascii_letters + " .,!?'", max_size=40)


@given(
    before=words,
    after=words,
    first_digit=st.sampled_from("123456789"),
    middle=st.text(alphabet=string.digits, min_size=14, max_size=14),
    separator=st.sampled_from(["", " ", "-"]),
    region=st.sampled_from(REGIONS),
)
def test_redact_masks_any_luhn_valid_card_in_a_sentence(
    before, after, first_digit, middle, separator, region
):
    body = first_digit + middle
    digits = body + luhn_check_digit(body)
    card = separator.join(digits[index : index + 4] for index in range(0, 16, 4))

    redacted = redact(f"{before} {card} {after}", region=region)

    assert redacted == f"{before} [card] {after}"


@given(
    text=st.text(alphabet=st.characters(exclude_categories=("Nd", "No", "Cs"), exclude_characters="@")),
    region=st.sampled_from(REGIONS),
)
def test_redact_never_changes_text_without_digits_or_at_sign(text, region):
    redacted = redact(text, region=region)

    assert redacted == text
