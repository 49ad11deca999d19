"""The offline assistant's choice for one customer message: pure and fast, nothing to download.

The knowledge base is searched by meaning (assistant.retrieval); qualification, intent and mood are
rules read from the message with its chat abbreviations spelt out. The reply quotes prices only from
the knowledge base entry it answers with.
"""

import re
from dataclasses import dataclass, field
from enum import StrEnum

from assistant.retrieval import best_entry, chat_text

ANSWER_FAQ = "answer_faq"
ASK_QUALIFICATION = "ask_qualification"
OFFER_CALL_BUTTON = "offer_call_button"
HAND_TO_AGENT = "hand_to_agent"
UNKNOWN = "unknown"

CALL_US = "You can call us now, free, with the button below."
INTRO = "Hi, I am the business's automated assistant. "  # how its first reply begins

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "hundred": 100, "a dozen": 12, "a hundred": 100,
}  # fmt: skip
NUMBER = rf"(\d{{1,5}}|{'|'.join(sorted(NUMBER_WORDS, key=len, reverse=True))})"
WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|wed|thu|fri)"
MONTH = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december|"
    r"jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
)
SEASON = r"(?:spring|summer|autumn|fall|winter|holidays|new year|christmas|easter)"

# Anger: one strong sign is enough; weak signs ("!!", shouting in capitals, "still", "again") need a
# second. Read from the spelt-out message, and the emoji and capitals from the message as sent.
ANGRY = re.compile(
    r"\b(?:angry|furious|livid|fuming|outraged|ridiculous|unacceptable|terrible|awful|horrible|worst|"
    r"scam\w*|useless|disgusting|disgrace\w*|pathetic|shocking|appalling|incompetent|unprofessional|"
    r"rubbish|crap|garbage|complain\w*|refund\w*|fed up|sick of|had enough|rip ?off|ripped off|"
    r"wtf|wth|ffs|omfg|fuck\w*|f\*+k\w*|shit\w*|bloody|damn|pissed|upset|annoy\w*|frustrat\w*|"
    r"disappoint\w*|dissatisfied|unhappy|not (?:happy|ok|okay|good enough|acceptable|impressed|satisfied)|"
    r"(?:is|are|that's|it's|what|such|total|absolute|complete)(?: an?)? (?:joke|farce|disgrace)|"
    r"hopeless|clowns|idiots|liars|thieves|crooks|cowboys|"
    r"(?:second|third|fourth|fifth|\d+(?:nd|rd|th)) time (?:i|i've|i'm|asking|now|that|you)|"
    r"wast(?:e|ing) (?:of )?(?:my |our )?(?:time|money)|money back|outrage\w*|unbelievable|because of you|"
    r"(?:sort (?:it|this) out|fix (?:it|this)) (?:now|asap|immediately|today)|"
    r"lawyer|legal action|report you|never again|how many times|"
    r"(?:charged|billed|debited|paid|taken)(?: \w+){0,3} (?:twice|two times|double|again)|"
    r"double[- ](?:charged|billed)|overcharg\w*|"
    r"(?:nobody|no one|none of you)(?: \w+){0,2} (?:answer|repl|respond|call|get|got|came|bother|"
    r"care|listen|help|pick|contact|return|ring)\w*|"
    r"no (?:answer|reply|response|one answer\w*)(?: yet| again| still)?[!?.]{2,}|"
    r"(?:still|been|keep) waiting|waited (?:for )?(?:hours|days|weeks|ages)|"
    r"is (?:any|some)one (?:even )?(?:there|working|reading|listening|awake|alive|home|answering)|"
    r"ignor(?:ing|ed|e) (?:me|us|my|our)|(?:so|really|very|too) (?:bad|poor)|"
    r"(?:bad|poor) (?:service|support)|(?:so|completely|totally) done|done with (?:you|this|your)|"
    r"(?:took|taken|taking|stole|stolen) (?:\w+ ){0,2}money|unauthori[sz]ed|"
    r"without (?:asking|my permission|permission|my consent|consent))\b|"
    r"!{3,}|[😡🤬😠👿💢😤🖕👎]",
    re.IGNORECASE,
)
IRRITATED = re.compile(
    r"\b(?:still|again|seriously|(?:are )?you (?:serious|kidding)|forever|ages|so long|wrong|broken|"
    r"nothing works|does not work|not working|fix (?:it|this)|"
    r"sort (?:it|this) out|why)\b|!!|\?!|\?{2,}|🙄|😒",
    re.IGNORECASE,
)
WANTS_PERSON = re.compile(
    r"\b(?:human|real person|a person|actual person|live (?:agent|person|chat)|an agent|the agent|"
    r"representative|rep|(?<!our )(?<!my )sales ?(?:rep|person|man|woman|guy|team|department)|salesperson|"
    r"operator|manager|supervisor|(?<!our )(?<!my )customer (?:service|care|support)|"
    r"(?<!our )(?<!my )support (?:team|staff|person|desk|agent)|(?:on|by|over) the phone|by phone|"
    r"your (?:staff|colleagues?)|a colleague|"
    r"(?:speak|talk|chat)(?:ing)? (?:to|with) (?:a |an |the |your |one of |someone|somebody|anyone|you|"
    r"sales|support|people|human|person|real|live|manager|agent|rep|staff|team|colleague)|"
    r"(?:someone|somebody|anyone)(?: \w+){0,3} (?:call|phone|ring|contact|reach|get back)|"
    r"(?:is there|get|want|need) (?:someone|somebody|anyone) (?:there|from|who|real|i can|to talk)|"
    r"(?:call|phone|ring) (?:me|us)|(?:give|gimme) (?:me|us) a (?:call|ring|buzz)|call(?:ed)? back|"
    r"callback|ring back|a call|phone call|(?:phone|telephone|contact|mobile) (?:number|no)|"
    r"number (?:i|we) (?:can|could) (?:call|ring)|(?:can|could|may) (?:i|we) (?:call|ring|phone)|"
    r"(?:call|ring|phone|reach) (?:you|now|your)|number to (?:call|ring|reach|contact)|"
    r"how (?:do|can) (?:i|we) (?:call|reach|contact) you|"
    r"(?:connect|transfer|put) (?:me|us) (?:through |over )?(?:to|with)|put me through|"
    r"is there (?:anyone|someone)(?: \w+)? (?:there|here|around|available|real|i can|to talk)|"
    r"(?:put|get) (?:me|us) in touch|in touch with (?:sales|support|someone|somebody|a person|your)|"
    r"(?:are you|is this) (?:a |an )?(?:bot|robot|machine|ai)|not (?:a |an )?(?:bot|robot|machine))\b",
    re.IGNORECASE,
)
# Buying: committed ("let's do it") weighs most, hot with any one more thing known; a clear wish to
# buy weighs less.
COMMITTED = re.compile(
    r"\b(?:let's (?:do (?:it|this)|go(?: ahead)?|get started|start)|ready to (?:pay|buy|sign|order|go|start|"
    r"purchase|proceed|roll)|sign (?:us|me) up|where do (?:i|we) sign|take my money|"
    r"(?:we'll|we will|i'll|i will) take it|go ahead|count (?:us|me) in|"
    r"(?:we're|we are|i'm|i am) in(?=\s*(?:[.!,]|$))|"
    r"(?:we've|we have|i've|i have) decided|want to (?:buy|order|pay) (?:it )?now|"
    r"(?:send|give) (?:me|us) the (?:invoice|contract|payment link)|ready when you are|"
    r"(?:we're|we are|i'm|i am) ready(?=\s*(?:[.!,]|$|now))|^\W*(?:deal|sold)\b|it's a deal)\b",
    re.IGNORECASE,
)
BUYING = re.compile(
    rf"\b(?:(?:buy\w*|purchas\w*|order)(?! (?:me|us)\b)|sign(?:ing)? up|subscribe|ready to|"
    rf"(?:want|like|looking|plan|hoping) "
    rf"to (?:start|begin|get started|go live|switch|roll out|onboard)|get started|go(?:ing)? live|"
    rf"onboard\w*|quote|demo|invoice|upgrade|"
    rf"(?:need|want|like|get|buy|take|order|add) {NUMBER} (?:licen[cs]es?|seats?|users?|accounts?)|"
    rf"send (?:me |us )?(?:a |the )?contract|(?:can|could) we start|proceed|move forward|next steps?|"
    rf"set (?:me |us |it |them )?up|how (?:do|can) (?:i|we) (?:start|begin|get started|sign up|pay|proceed)|"
    rf"(?:want|need|'d like|would like|take|go with|going with|choose|pick|decided on) (?:the |a )?"
    rf"(?:starter|pro|enterprise|business plan|basic plan))\b",
    re.IGNORECASE,
)
PLAN = re.compile(
    r"\b(starter|pro|enterprise|(?:business|basic)(?= (?:plan|package|tier|option|subscription|one)))\b",
    re.IGNORECASE,
)
TEAM_SIZE = re.compile(
    rf"\b{NUMBER}[- ]?(?:people|persons?|users?|seats?|agents?|employees|staff|licen[cs]es?|members|"
    rf"colleagues|reps|operators|workers|accounts|of us|guys|heads|man team|person team|strong)\b|"
    rf"\b(?:team of|we are|we're|there are|there's|for) {NUMBER}\b(?! ?(?:%|years|days|hours|minutes|"
    rf"weeks|months|euro|eur|€|dollars|pounds|plans?|locations|shops|stores|branches|o'clock|am|pm|:))",
    re.IGNORECASE,
)
ALONE = re.compile(
    r"\b(?:just me|only me|just myself|only myself|on my own|by myself|solo|one[- ](?:man|woman|person)|"
    r"freelancer|sole trader)\b",
    re.IGNORECASE,
)
URGENT = re.compile(
    rf"\b(?:today|tonight|tomorrow|asap|right away|straight away|immediately|right now|this week|"
    rf"this weekend|end of (?:the |this )?week|(?:start|sign up|buy|order|begin|go live|get going)\w* now|"
    rf"within (?:a few |\d+ )?days|in (?:a few|\d+|two|three) days|"
    rf"(?:by|from|this|coming|on|starting|start|before|until|till|as of) {WEEKDAY}|"
    rf"(?:start|begin|go live|launch|kick off|onboard)\w* (?:on |by )?{WEEKDAY})\b",
    re.IGNORECASE,
)
TIMELINE = re.compile(
    rf"\b(?:next week|this month|next month|this quarter|next quarter|next year|this year|later this year|"
    rf"early next year|end of (?:the |this )?(?:month|quarter|year)|"
    rf"(?:in|within) (?:a |\d+ |a few |a couple of |two |three |six )?(?:days?|weeks?|months?|years?)|"
    rf"(?:next|in|by|from|after|before|until|early|mid|late|end of|start of|beginning of|around|this|"
    rf"over the) (?:the )?(?:{MONTH}|{SEASON})|q[1-4]|"
    rf"not (?:yet|sure when|in a (?:rush|hurry))|no (?:rush|hurry)|soon|next {WEEKDAY}|in (?:19|20)\d\d|"
    rf"no (?:fixed |set |firm |real )?(?:date|timeline|deadline|timeframe)(?: yet)?|"
    rf"(?:a few |a couple of |\d+ |two |three |four |six )?(?:days|weeks|months) from now)\b",
    re.IGNORECASE,
)
WHOLE_DATE = re.compile(rf"^\W*(?:on |in )?({WEEKDAY}|{MONTH})\W*$", re.IGNORECASE)
GREETING = re.compile(
    r"^\W*(?:hi|hello|hey|hiya|yo|howdy|greetings|(?:good )?(?:morning|afternoon|evening|day))\b|👋",
    re.IGNORECASE,
)
EXPLORING = re.compile(
    r"\b(?:brows\w*|just looking|having a look|take a look|look(?:ing)? around|looking (?:at|into|for)|"
    r"compar\w*|research\w*|evaluat\w*|explor\w*|consider\w*|shopping around|checking (?:you |it )?out|"
    r"thinking (?:about|of)|interested|curious|still deciding|deciding|options|alternatives?|providers?|"
    r"tell me (?:more|about)|more information|how (?:does it|do you) work|"
    r"what (?:do you|can you) (?:offer|do)|"
    r"(?:i|we) (?:run|own|manage|have) (?:a|an|our)|my (?:business|company|shop|store|agency|clinic|"
    r"salon|restaurant|practice|team|firm)|our (?:business|company|shop|store|agency|clinic|salon|"
    r"restaurant|practice|team|firm|customers|clients|patients|callers|phones?|sales team|support team)|"
    r"(?:we are|we're|i am|i'm) (?:a|an) (?:\w+ ){0,3}(?:business|company|shop|store|agency|clinic|practice|"
    r"firm|team|startup|restaurant|salon|hotel|garage|studio|call cent(?:er|re)|school|office)|"
    r"(?:calls|messages|chats) (?:we|i) (?:can't|cannot|don't|do not|never) (?:answer|pick up|get to|handle)|"
    r"difference|differ|vs|versus|which (?:plan|one) (?:is|should|would|do)|"
    r"(?:missed|missing|lost|losing|unanswered|too many|lots of|loads of|so many|a lot of) (?:\w+ )?"
    r"(?:calls|messages|leads|customers|chats)|"
    r"(?:we|i) (?:keep )?(?:miss|lose|struggle|can't keep up|cannot keep up)|"
    r"(?:answer|pick up|handle|reply to|keep up with|manage) (?:all )?(?:the |our |those )?(?:calls|"
    r"messages|chats|enquiries|inquiries|requests|phones?)|"
    r"(?:for|suit\w*|right for|good for|fit for|work for) (?:a |my |our )?(?:small |big |large |medium )?"
    r"(?:business|compan|team|shop|agenc|clinic|practice|firm)\w*|"
    r"what (?:does|do) (?:it|this|you|your \w+) do|what is (?:this|it)(?: about)?\W*$|"
    r"how does (?:it|this) work)\b",
    re.IGNORECASE,
)
# A message naming a price asks it, question mark or not ("price for starter pls").
QUESTION = re.compile(
    r"\?|^\W*(?:how|what|when|where|which|who|why|do|does|is|are|can|could|will|would|any)\b|"
    r"\b(?:price|prices|pricing|cost|costs|how much|fee|fees)\b",
    re.IGNORECASE,
)


class Mood(StrEnum):
    CALM = "calm"
    ANGRY = "angry"


@dataclass(frozen=True)
class Entry:
    question: str
    answer: str
    price: str = ""


@dataclass(frozen=True)
class Question:
    lead_field: str
    question: str


@dataclass(frozen=True)
class Decision:
    action: str
    reply: str = ""
    lead_fields: dict[str, str] = field(default_factory=dict)
    score: int = 0
    reason: str = ""
    topic: str = ""  # for an answer: the knowledge base question the customer asked about


def is_shouting(text: str) -> bool:
    """Written mostly in capitals, at some length (a short "OK" or "PRO plan" is not shouting)."""
    letters = [letter for letter in text if letter.isalpha()]
    return len(letters) >= 10 and sum(letter.isupper() for letter in letters) >= 0.7 * len(letters)


def mood_of(text: str) -> Mood:
    """Angry on one strong sign (a word, an angry emoji, "!!!"), or on two weak ones."""
    spelt = chat_text(text)
    if ANGRY.search(spelt):
        return Mood.ANGRY
    weak_signs = len(IRRITATED.findall(spelt)) + is_shouting(text)
    return Mood.ANGRY if weak_signs >= 2 else Mood.CALM


def wants_person(text: str) -> bool:
    return bool(WANTS_PERSON.search(chat_text(text)))


def team_size_of(spelt: str) -> str:
    if team := TEAM_SIZE.search(spelt):
        number = next(group for group in team.groups() if group)
        return str(NUMBER_WORDS.get(number, number))
    return "1" if ALONE.search(spelt) else ""


def lead_fields_of(text: str) -> dict[str, str]:
    """The lead fields a message states, by rule."""
    spelt = chat_text(text)
    found = {}
    if plan := PLAN.search(spelt):
        found["plan"] = plan.group(1).lower()
    if team_size := team_size_of(spelt):
        found["team_size"] = team_size
    if when := URGENT.search(spelt) or TIMELINE.search(spelt) or WHOLE_DATE.search(spelt):
        found["timeline"] = when.group(0).strip().lower()
    return found


def lead_score(*, fields: dict[str, str], text: str) -> int:
    """0 to 100: how ready the customer is to buy, from what they said."""
    spelt = chat_text(text)
    score = 0
    if "plan" in fields:
        score += 20
    if (team := fields.get("team_size", "")).isdigit():
        score += 25 if int(team) >= 10 else 10
    if when := fields.get("timeline"):
        score += 30 if URGENT.search(when) or WHOLE_DATE.fullmatch(when) else 15
    if COMMITTED.search(spelt):
        score += 65
    elif BUYING.search(spelt):
        score += 35
    return min(score, 100)


def faq_match(*, text: str, entries: list[Entry]) -> Entry | None:
    """The knowledge base entry that answers the message, if one does well enough."""
    position = best_entry(text=text, entries=entries)
    return None if position is None else entries[position]


def answer_text(entry: Entry) -> str:
    """The knowledge base entry's answer as sent, with its price when it has one (the only price the
    assistant ever quotes)."""
    return entry.answer + (f" Price: {entry.price}." if entry.price else "")


def decide(
    *,
    text: str,
    entries: list[Entry],
    questions: list[Question],
    known_fields: dict[str, str],
    hot_threshold: int,
    is_first_reply: bool,
    can_be_called: bool = True,
) -> Decision:
    """What the assistant does with a customer's message: hand an angry customer or one who asks for
    a person to an agent, offer a hot lead the call button, answer from the knowledge base, ask the
    next qualification question of a customer exploring or telling about themselves, or say it does
    not know (which hands over too). A customer the business cannot call (a red-list country) is
    offered the call button instead of a call back.
    """
    stated = lead_fields_of(text)
    fields = {**known_fields, **stated}
    score = lead_score(fields=fields, text=text)
    spelt = chat_text(text)
    intro = INTRO if is_first_reply else ""

    def decision(action: str, reply: str, reason: str, topic: str = "") -> Decision:
        return Decision(
            action=action, reply=intro + reply, lead_fields=fields, score=score, reason=reason, topic=topic
        )

    if mood_of(text) == Mood.ANGRY:
        if not can_be_called:
            return decision(OFFER_CALL_BUTTON, "I am sorry. " + CALL_US, "angry, cannot be called")
        return decision(HAND_TO_AGENT, "I am sorry. I am passing you to a colleague now.", "angry")
    if wants_person(text):
        if not can_be_called:
            return decision(OFFER_CALL_BUTTON, CALL_US, "asked for a person, cannot be called")
        return decision(HAND_TO_AGENT, "I am passing you to a colleague now.", "asked for a person")
    if score > hot_threshold:
        return decision(OFFER_CALL_BUTTON, CALL_US, "hot lead")
    is_question = bool(QUESTION.search(spelt))
    is_answering = bool(stated) and not is_question  # "the starter plan" is not asking its price
    if not is_answering and (entry := faq_match(text=text, entries=entries)):
        return decision(ANSWER_FAQ, answer_text(entry), "knowledge base", topic=entry.question)
    # A question the knowledge base cannot answer goes to a colleague, unless it only explores.
    is_exploring = bool(EXPLORING.search(spelt) or BUYING.search(spelt) or COMMITTED.search(spelt))
    is_qualifying = is_exploring or (not is_question and bool(stated or GREETING.search(spelt)))
    unanswered = [question for question in questions if question.lead_field not in fields]
    if unanswered and is_qualifying:
        return decision(ASK_QUALIFICATION, unanswered[0].question, "qualifying")
    if stated and not unanswered and questions:
        # Every question answered and not hot: a qualified lead for a person to follow up.
        if not can_be_called:
            return decision(OFFER_CALL_BUTTON, "Thank you, that is all I needed. " + CALL_US, "qualified")
        return decision(
            HAND_TO_AGENT, "Thank you, that is all I needed. A colleague will answer you here.", "qualified"
        )
    if not can_be_called:
        return decision(OFFER_CALL_BUTTON, "I do not know that. " + CALL_US, "unknown, cannot be called")
    return decision(UNKNOWN, "I do not know that; a colleague will answer you.", "not in the knowledge base")
