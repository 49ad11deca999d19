"""Finding the knowledge base entry a customer's message asks about, by meaning rather than wording.

A message and every entry (its question, answer and price) are reduced to the same features: chat
abbreviations spelt out ("r u" → "are you"), punctuation and emoji dropped, filler words left out,
words brought to a rough stem, misspelt words corrected to the nearest word the knowledge base or the
concepts know (rapidfuzz's optimal string alignment distance), and words and phrases that say the same
thing folded into one concept ("how much", "cost" and "fee" are all #price). An entry answers when the
features of the message it shares, weighed by how rare each is among the entries, make up enough of
the message: an off-topic question shares little or nothing and stays unanswered.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from rapidfuzz import process
from rapidfuzz.distance import OSA

ANSWERS_MIN = 0.5  # the share of the message's weight an entry must hold to answer it
ANSWER_TEXT_WEIGHT = 0.8  # a feature found only in an entry's answer or price counts a little less

# Chat spellings, spelt out before anything else reads the message (the rules in assistant.decision
# read this text too).
ABBREVIATIONS = {
    "u": "you",
    "ya": "you",
    "r": "are",
    "ur": "your",
    "yr": "your",
    "pls": "please",
    "plz": "please",
    "plss": "please",
    "ppl": "people",
    "ppls": "people",
    "thx": "thanks",
    "thnx": "thanks",
    "thanx": "thanks",
    "ty": "thanks",
    "wanna": "want to",
    "gonna": "going to",
    "gotta": "got to",
    "lemme": "let me",
    "gimme": "give me",
    "dunno": "do not know",
    "whats": "what is",
    "wats": "what is",
    "wat": "what",
    "hw": "how",
    "im": "i am",
    "ive": "i have",
    "dont": "do not",
    "doesnt": "does not",
    "didnt": "did not",
    "cant": "cannot",
    "wont": "will not",
    "isnt": "is not",
    "lets": "let's",
    "tmrw": "tomorrow",
    "tmr": "tomorrow",
    "tmrow": "tomorrow",
    "tomorow": "tomorrow",
    "2moro": "tomorrow",
    "2morrow": "tomorrow",
    "2day": "today",
    "b4": "before",
    "abt": "about",
    "cud": "could",
    "wud": "would",
    "shud": "should",
    "thru": "through",
    "hrs": "hours",
    "mins": "minutes",
    "wk": "week",
    "wks": "weeks",
    "mth": "month",
    "mths": "months",
    "mgr": "manager",
    "some1": "someone",
    "any1": "anyone",
    "no1": "no one",
    "noone": "no one",
    "every1": "everyone",
    "sry": "sorry",
    "soz": "sorry",
    "hiya": "hi",
    "hii": "hi",
    "heyy": "hey",
    "yall": "you all",
    "w": "with",
    "anybody": "anyone",
    "somebody": "someone",
    "nobody": "no one",
}
APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})  # typographic quotes

FILLER_WORDS = """able about actually after all also am an and any anyone anything anytime app are as
    ask at be been before both btw but by can cannot could currently day dear did do does doing each
    even ever every first for from get give going got guy had has have hello hey hi hiya how instead
    just kind kindly know let lets like lol long make me might month more much my need not offer ok
    okay one or other our out period please possible product provide question quick really see service
    so software some someone something still system take tbh tell than thank thanks that the then there
    these they this those through time too tool up us use very want was way we week what when whenever
    where which who whom why will with wondering would year yes you your yours"""
FILLER = frozenset(FILLER_WORDS.split())

# Words and phrases that mean the same to a customer asking a business, folded into one concept. The
# phrases are read first and consume their words ("before paying" is about the trial, not payment).
CONCEPT_PHRASES = [
    (r"how much|set (?:me|us) back|per (?:month|year|user|seat)|a month|what do you charge", "#price"),
    (r"before (?:paying|i pay|we pay|buying|i buy|we buy|committing|we commit|i commit|signing)", "#trial"),
    (r"without paying|for free|try (?:it )?out|test drive|risk free", "#trial"),
    (r"business hours|bank holidays?|public holidays?|24 ?/ ?7", "#hours"),
    (r"bank transfer|direct debit|apple pay|google pay", "#payment"),
    (
        r"locked in(?:to)?|tied in(?:to)?|lock in|notice period|minimum (?:term|contract|period)|get out of|"
        r"end (?:my|the|our) (?:contract|subscription|plan|account)",
        "#cancel",
    ),
    (r"where are you|come (?:by|over|round|to)|drop by|drop in|pop in|find you|based", "#location"),
    (r"works? with|plug ?in|talks? to (?:my|our) crm", "#integration"),
]
CONCEPT_WORDS = {
    "#price": "price pricing cost costing fee charge tariff expensive cheap cheaper affordable afford "
    "monthly euro eur dollar pound",
    "#trial": "trial try trying test testing free freemium demo",
    "#hours": "open opening close closing closed shut hour weekend saturday sunday monday tuesday wednesday "
    "thursday friday weekday holiday",
    "#payment": "pay paying paid payment card credit debit visa mastercard amex paypal sepa invoice "
    "invoicing wire bill billing yearly annual annually",
    "#cancel": "cancel cancelling canceling cancellation cancelled unsubscribe terminate termination "
    "quit stop leave contract commitment",
    "#location": "office address located location visit street headquarters hq premise direction city "
    "centre center town near nearby area map parking",
    "#integration": "integrate integration integrated connect connected connector compatible sync "
    "crm api plugin zapier salesforce hubspot pipedrive zoho zendesk freshdesk dynamic slack",
}
# Words customers use for the same thing the knowledge base calls otherwise.
SAME_AS = {
    "package": "plan",
    "tier": "plan",
    "bundle": "plan",
    "subscription": "plan",
    "licence": "user",
    "license": "user",
    "seat": "user",
}
CONCEPT_OF = {word: concept for concept, words in CONCEPT_WORDS.items() for word in words.split()}
PHRASES = [(re.compile(rf"\b(?:{pattern})(?!\w)"), concept) for pattern, concept in CONCEPT_PHRASES]


class Answerable(Protocol):
    @property
    def question(self) -> str: ...
    @property
    def answer(self) -> str: ...
    @property
    def price(self) -> str: ...


@lru_cache(maxsize=64)  # one decision reads its message several times
def chat_text(text: str) -> str:
    """The message in lower case with its chat abbreviations spelt out; punctuation and emoji kept."""
    lowered = re.sub(r"([a-z])\1{2,}", r"\1", text.lower().translate(APOSTROPHES))  # "sooo" is "so"
    return re.sub(r"(?<![\w'])[a-z0-9]+(?![\w'])", lambda word: ABBREVIATIONS.get(word[0], word[0]), lowered)


def stem(word: str) -> str:
    """A rough stem, enough to meet "calls" with "call" and "recording" with "record"."""
    if word in CONCEPT_OF or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ing") and len(word) >= 7:
        return word[:-3]
    if word.endswith("ed") and len(word) >= 6:
        return word[:-1] if word[:-1] in CONCEPT_OF else word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words_of(text: str) -> list[str]:
    """The message's words that carry meaning: concept phrases folded, filler and numbers left out."""
    spelt = chat_text(text)
    spelt = re.sub(r"n't\b", " not", spelt.replace("can't", "cannot"))
    spelt = re.sub(r"'\w*", "", spelt).replace("-", " ")  # what's, we're: the word before is enough
    for phrase, concept in PHRASES:
        spelt = phrase.sub(f" {concept} ", spelt)
    spelt = re.sub(r"[€$£]", " #price ", spelt)
    found = []
    for word in re.findall(r"#?[a-z][a-z0-9]*", spelt):
        if word.startswith("#"):
            found.append(word)
        elif (
            word not in FILLER
            and (stemmed := stem(word)) not in FILLER
            and (len(word) > 2 or word in CONCEPT_OF)
        ):
            found.append(SAME_AS.get(stemmed, stemmed))
    return found


def feature(word: str) -> str:
    return CONCEPT_OF.get(word, word)


@dataclass(frozen=True, eq=False)
class Index:
    """Which entries hold each feature and how much, with how rare each feature is among them."""

    postings: dict[str, tuple[tuple[int, float], ...]]  # feature → (entry's position, 1 or less)
    rarity: dict[str, float]  # feature → inverse document frequency
    unseen: float  # what a feature no entry holds weighs: as much as the rarest, it is what is asked
    vocabulary: tuple[str, ...]  # every word a misspelling may be corrected to
    known: frozenset[str]  # the vocabulary, to look words up in
    corrections: dict[str, str] = field(default_factory=dict)  # misspelt word → corrected, as met

    def corrected(self, word: str) -> str:
        """The known word a misspelt one was meant to be: one slip in a word of five letters or more,
        two in one of eight or more (a swap of neighbouring letters is one slip)."""
        if word.startswith("#") or len(word) < 5 or word in self.known:
            return word
        if word not in self.corrections:
            slips = 2 if len(word) >= 8 else 1
            nearest = process.extractOne(word, self.vocabulary, scorer=OSA.distance, score_cutoff=slips)
            self.corrections[word] = nearest[0] if nearest else word
        return self.corrections[word]


@lru_cache(maxsize=64)
def index_of(entries: tuple[tuple[str, str, str], ...]) -> Index:
    """Built once per knowledge base: its entries' (question, answer, price), as they read now."""
    postings: dict[str, list[tuple[int, float]]] = {}
    vocabulary = set(CONCEPT_OF)
    for position, (question, answer, price) in enumerate(entries):
        asked = words_of(question)
        told = words_of(f"{answer} {price}") + (["#price"] if price else [])
        vocabulary.update(asked + told)
        weights = dict.fromkeys(map(feature, told), ANSWER_TEXT_WEIGHT)
        weights.update(dict.fromkeys(map(feature, asked), 1.0))
        for name, weight in weights.items():
            postings.setdefault(name, []).append((position, weight))
    return Index(
        postings={name: tuple(held) for name, held in postings.items()},
        rarity={name: math.log(1 + len(entries) / len(held)) for name, held in postings.items()},
        unseen=math.log(1 + len(entries)),
        vocabulary=tuple(sorted(vocabulary)),
        known=frozenset(vocabulary),
    )


def best_entry(*, text: str, entries: Sequence[Answerable]) -> int | None:
    """The position of the entry that answers the message, or None when none holds enough of it;
    of entries holding as much, the first."""
    if not entries:
        return None
    index = index_of(tuple((entry.question, entry.answer, entry.price) for entry in entries))
    asked = {feature(index.corrected(word)) for word in words_of(text)}
    if not asked:
        return None
    total = sum(index.rarity.get(name, index.unseen) for name in asked)
    held: dict[int, float] = {}
    for name in asked:
        for position, weight in index.postings.get(name, ()):
            held[position] = held.get(position, 0.0) + index.rarity[name] * weight
    if not held:
        return None
    best = min(held, key=lambda position: (-held[position], position))
    return best if held[best] / total >= ANSWERS_MIN else None
