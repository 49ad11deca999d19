"""A sample business's knowledge base and qualification questions, and customer messages labelled
with the action the assistant should choose: what the bench measures its accuracy on and the tests
hold it to, category by category."""

from assistant.decision import (
    ANSWER_FAQ,
    ASK_QUALIFICATION,
    HAND_TO_AGENT,
    OFFER_CALL_BUTTON,
    UNKNOWN,
    Entry,
    Question,
)

ENTRIES = [
    Entry("What are your opening hours?", "We are open Monday to Friday, 9:00 to 17:00."),
    Entry(
        "How much does the Pro plan cost?",
        "The Pro plan includes call recording and reports.",
        "€49 per month",
    ),
    Entry("How much does the Starter plan cost?", "The Starter plan covers one number.", "€19 per month"),
    Entry("Do you offer a free trial?", "Yes, every plan starts with a 14-day free trial."),
    Entry("Where is your office?", "Our office is at 12 Harbour Street, Dublin."),
    Entry("Can I cancel my subscription any time?", "Yes, you can cancel at any time from your account."),
    Entry("Which payment methods do you accept?", "We accept cards and SEPA direct debit."),
    Entry("Do you integrate with Salesforce or HubSpot?", "Yes, both, through our CRM integrations."),
]

QUESTIONS = [
    Question("plan", "Which plan are you interested in: Starter, Pro or Enterprise?"),
    Question("team_size", "How many people are in your team?"),
    Question("timeline", "When would you like to start?"),
]

HOT_THRESHOLD = 70

# (category, message, expected action)
LABELLED = [
    ("faq", "what are your opening hours", ANSWER_FAQ),
    ("faq", "How much does the pro plan cost?", ANSWER_FAQ),
    ("faq", "how much is the starter plan", ANSWER_FAQ),
    ("faq", "do you offer a free trial?", ANSWER_FAQ),
    ("faq", "where is your office", ANSWER_FAQ),
    ("faq", "can I cancel my subscription at any time", ANSWER_FAQ),
    ("faq", "what payment methods do you accept", ANSWER_FAQ),
    ("faq", "do you integrate with hubspot", ANSWER_FAQ),
    ("faq", "Opening hours?", ANSWER_FAQ),
    ("faq", "is there a free trial", ANSWER_FAQ),
    ("qualification", "Hi", ASK_QUALIFICATION),
    ("qualification", "Hello, I am looking at your product", ASK_QUALIFICATION),
    ("qualification", "We are 5 people", ASK_QUALIFICATION),
    ("qualification", "I'd like the starter plan", ASK_QUALIFICATION),
    ("qualification", "probably next quarter", ASK_QUALIFICATION),
    ("qualification", "good morning", ASK_QUALIFICATION),
    ("qualification", "we have 3 agents", ASK_QUALIFICATION),
    ("qualification", "thinking about the business plan", ASK_QUALIFICATION),
    ("hot", "We want to buy the enterprise plan for 50 agents this week", OFFER_CALL_BUTTON),
    ("hot", "Ready to sign up today, pro plan, 20 users", OFFER_CALL_BUTTON),
    ("hot", "we need 30 seats asap and want to purchase", OFFER_CALL_BUTTON),
    ("hot", "Enterprise for 100 employees, we want to start immediately", OFFER_CALL_BUTTON),
    ("hot", "please send a quote, 15 agents, starting tomorrow", OFFER_CALL_BUTTON),
    ("hot", "we are ready to order the pro plan for 12 people this week", OFFER_CALL_BUTTON),
    ("person", "Can I talk to a human?", HAND_TO_AGENT),
    ("person", "I want to speak to someone", HAND_TO_AGENT),
    ("person", "call me please", HAND_TO_AGENT),
    ("person", "is there a real person there", HAND_TO_AGENT),
    ("person", "put me through to an agent", HAND_TO_AGENT),
    ("person", "can somebody phone me back", HAND_TO_AGENT),
    ("person", "I need a representative", HAND_TO_AGENT),
    ("angry", "This is ridiculous, nobody answers", HAND_TO_AGENT),
    ("angry", "Your service is terrible", HAND_TO_AGENT),
    ("angry", "I am so angry about my bill", HAND_TO_AGENT),
    ("angry", "worst support ever!!!", HAND_TO_AGENT),
    ("angry", "I want a refund now", HAND_TO_AGENT),
    ("angry", "this is unacceptable", HAND_TO_AGENT),
    ("off-topic", "What's the weather like in Paris?", UNKNOWN),
    ("off-topic", "who won the football last night", UNKNOWN),
    ("off-topic", "Do you sell pizza?", UNKNOWN),
    ("off-topic", "tell me a joke", UNKNOWN),
    ("off-topic", "what is the capital of Peru", UNKNOWN),
]
