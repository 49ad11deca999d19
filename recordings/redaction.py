"""Personal data masked out of call transcripts and call summaries before they are shown.

A transcript is a stranger's voice turned into text: customers read out card numbers, phone
numbers, email addresses and identity numbers to agents, and all of it lands in the transcript and
often in the summary. The raw text is kept and shown only to users with permission to see it;
everyone else, in the API and in the UI, sees the redacted text, where each piece of personal data
is replaced by its kind: "[card]", "[email]", "[phone]" or "[national id]".

What is masked:

- **card**: payment card numbers of 13 to 19 digits, written together or grouped by single spaces
  or dashes, that pass the Luhn check. A digit run that fails the check is left alone, and so is
  one starting with 0 or right after a "+": no card number does, but "0044 …" and "+55 …" phone
  numbers do.
- **email**: ordinary written addresses (``name@example.com``). A spelled-out "name at example dot
  com" is not recognised.
- **phone**: what ``phonenumbers`` finds as a valid number: international numbers (``+44 …``,
  ``0044 …``) always, national numbers (``020 7946 0958``) only when the customer's country is given
  as a hint, plus a bare run of 10 to 15 digits that is a valid number for that country.
- **national_id**: US Social Security numbers (``123-45-6789``), UK National Insurance numbers
  (``AB 12 34 56 C``), Brazilian CPF (``123.456.789-09`` or 11 digits), Spanish DNI and NIE
  (``12345678Z``, ``X1234567L``) and Indian Aadhaar (``2345 6789 0124``), each with its own check
  digits or allocation rules verified (python-stdnum's checks for Luhn, CPF, DNI, NIE and Aadhaar).

Transcripts come from speech to text, so numbers are mostly digits, sometimes grouped with spaces or
dashes. What is *not* masked matters as much, since agents and supervisors read these transcripts to
help the customer: order and ticket numbers, amounts of money, dates, times, years and any digit run
whose check digits are wrong stay as spoken. Phone matching uses the ``VALID`` leniency of
``phonenumbers``, so "order 4521" is never taken for a phone number.

Where two findings overlap, the more specific one wins: an email over anything inside it, then a
card, then a verified national id, then a phone number. The spans returned never overlap.
"""

import re
from dataclasses import dataclass

import phonenumbers
from stdnum import luhn
from stdnum.br import cpf
from stdnum.es import dni, nie
from stdnum.in_ import aadhaar

KINDS = ("card", "email", "phone", "national_id")
LABELS = {"card": "[card]", "email": "[email]", "phone": "[phone]", "national_id": "[national id]"}


@dataclass(frozen=True)
class PiiSpan:
    start: int  # character offsets into the text, end exclusive
    end: int
    kind: str  # one of KINDS


def redact(text: str, *, region: str | None = None) -> str:
    """The text with every piece of personal data replaced by the label of its kind.

    `region` is the customer's country (ISO 3166 alpha-2), which lets national phone numbers be
    recognised; without it only international ones are.
    """
    pieces = []
    position = 0
    for span in pii_spans(text, region=region):
        pieces.append(text[position : span.start])
        pieces.append(LABELS[span.kind])
        position = span.end
    pieces.append(text[position:])
    return "".join(pieces)


def pii_spans(text: str, *, region: str | None = None) -> list[PiiSpan]:
    """Where the personal data in the text is: non-overlapping spans, sorted by start."""
    findings = [
        *_emails(text),
        *_cards(text),
        *_national_ids(text),
        *_phones(text, region=region.upper() if region else None),
    ]
    # Kinds are found in order of precedence; a later finding overlapping an earlier one loses.
    kept: list[PiiSpan] = []
    for finding in findings:
        if not any(finding.start < other.end and other.start < finding.end for other in kept):
            kept.append(finding)
    return sorted(kept, key=lambda span: span.start)


# A number stands on its own: not glued to a word, not after a "+" (that is a dialling prefix), and
# not the continuation of a decimal, a date, a time or a longer dashed number.
_BEFORE = r"(?<![\w+])(?<![0-9][.,:/-])"
_AFTER = r"(?!\w)(?![.,:/-][0-9])"

_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
# Digit groups joined by single spaces or dashes; a card may be any run of whole groups within it.
_DIGIT_RUN = re.compile(_BEFORE + r"[0-9]+(?:[ -][0-9]+)*" + _AFTER)
_DIGIT_GROUP = re.compile(r"[0-9]+")
_BARE_DIGITS = re.compile(_BEFORE + r"[0-9]{10,15}" + _AFTER)
_INTERNATIONAL_00 = re.compile(r"(?<![0-9])00[1-9]")

_US_SSN = re.compile(_BEFORE + r"([0-9]{3})-([0-9]{2})-([0-9]{4})" + _AFTER)
_UK_NINO = re.compile(r"(?<!\w)([A-Z]{2}) ?([0-9]{2}) ?([0-9]{2}) ?([0-9]{2}) ?[A-D](?!\w)")
_BR_CPF = re.compile(_BEFORE + r"(?:[0-9]{3}\.[0-9]{3}\.[0-9]{3}-[0-9]{2}|[0-9]{11})" + _AFTER)
_ES_DNI_NIE = re.compile(r"(?<!\w)([XYZ]?)([0-9]{7,8})[ -]?([A-Z])(?!\w)")
_IN_AADHAAR = re.compile(_BEFORE + r"[2-9][0-9]{3}([ -]?)[0-9]{4}\1[0-9]{4}" + _AFTER)

_UK_NINO_BAD_FIRST = set("DFIQUV")
_UK_NINO_BAD_SECOND = set("DFIOQUV")
_UK_NINO_BAD_PREFIXES = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}

# Any country that dials abroad with "00": used to read "0044 …" whatever the customer's country.
_DIALS_ABROAD_WITH_00 = "DE"


def _emails(text: str) -> list[PiiSpan]:
    return [PiiSpan(match.start(), match.end(), "email") for match in _EMAIL.finditer(text)]


def _cards(text: str) -> list[PiiSpan]:
    """The longest Luhn-valid runs of 13 to 19 digits made of whole groups, left to right."""
    spans = []
    for run in _DIGIT_RUN.finditer(text):
        groups = list(_DIGIT_GROUP.finditer(text, run.start(), run.end()))
        first = 0
        while first < len(groups):
            card_end = None
            digits = ""
            for last in range(first, len(groups)):
                digits += groups[last].group()
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and digits[0] != "0" and _luhn_is_valid(digits):
                    card_end = last
            if card_end is None:
                first += 1
            else:
                spans.append(PiiSpan(groups[first].start(), groups[card_end].end(), "card"))
                first = card_end + 1
    return spans


def _national_ids(text: str) -> list[PiiSpan]:
    checks = [
        (_US_SSN, _us_ssn_is_valid),
        (_UK_NINO, _uk_nino_is_valid),
        (_BR_CPF, _br_cpf_is_valid),
        (_ES_DNI_NIE, _es_dni_nie_is_valid),
        (_IN_AADHAAR, _in_aadhaar_is_valid),
    ]
    return [
        PiiSpan(match.start(), match.end(), "national_id")
        for pattern, is_valid in checks
        for match in pattern.finditer(text)
        if is_valid(match)
    ]


def _phones(text: str, *, region: str | None) -> list[PiiSpan]:
    leniency = phonenumbers.Leniency.VALID
    spans = [
        PiiSpan(match.start, match.end, "phone")
        for match in phonenumbers.PhoneNumberMatcher(text, region or "ZZ", leniency=leniency)
    ]
    if _INTERNATIONAL_00.search(text):
        for match in phonenumbers.PhoneNumberMatcher(text, _DIALS_ABROAD_WITH_00, leniency=leniency):
            # Only "00" followed by the country code; national numbers of that country are not meant.
            digits = re.sub(r"[^0-9]", "", match.raw_string)
            if digits.startswith(f"00{match.number.country_code}"):
                spans.append(PiiSpan(match.start, match.end, "phone"))
    if region:
        for run in _BARE_DIGITS.finditer(text):
            try:
                number = phonenumbers.parse(run.group(), region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                spans.append(PiiSpan(run.start(), run.end(), "phone"))
    return sorted(spans, key=lambda span: (span.start, -span.end))


def _luhn_is_valid(digits: str) -> bool:
    return luhn.is_valid(digits)


def _us_ssn_is_valid(match: re.Match) -> bool:
    area, group, serial = match.groups()
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _uk_nino_is_valid(match: re.Match) -> bool:
    prefix = match.group(1)
    return (
        prefix[0] not in _UK_NINO_BAD_FIRST
        and prefix[1] not in _UK_NINO_BAD_SECOND
        and prefix not in _UK_NINO_BAD_PREFIXES
    )


def _br_cpf_is_valid(match: re.Match) -> bool:
    digits = cpf.compact(match.group())
    # 111.111.111-11 and the like pass the arithmetic but are never issued
    return len(set(digits)) > 1 and cpf.is_valid(digits)


def _es_dni_nie_is_valid(match: re.Match) -> bool:
    prefix, digits, letter = match.groups()
    return nie.is_valid(prefix + digits + letter) if prefix else dni.is_valid(digits + letter)


def _in_aadhaar_is_valid(match: re.Match) -> bool:
    return aadhaar.is_valid(match.group())
