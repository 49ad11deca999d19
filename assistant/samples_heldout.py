"""A held-out set of customer WhatsApp messages for the sample business in assistant.samples.

It was written apart from the assistant's rules (without reading how the assistant decides, nor its tests)
so that the accuracy measured on it is honest: none of these messages was used to tune the rules, and
their wording differs from the labelled messages in assistant.samples. Each message is judged on its own
as a first reply with no lead fields known yet; the label is what a good contact-center assistant should
do, including for messages that mix intents (an angry message that mentions cancelling still goes to a
person; a ready-to-buy message that asks where to pay is still a hot lead).
"""

from assistant.decision import ANSWER_FAQ, ASK_QUALIFICATION, HAND_TO_AGENT, OFFER_CALL_BUTTON, UNKNOWN

# (category, message, expected action)
LABELLED: list[tuple[str, str, str]] = [
    # A knowledge-base entry answers the message.
    ("faq", "hey what time do u close on fridays?", ANSWER_FAQ),
    ("faq", "r u open on saturday?", ANSWER_FAQ),
    ("faq", "How much is Pro per month? 🙂", ANSWER_FAQ),
    ("faq", "whats the price of the starter package", ANSWER_FAQ),
    ("faq", "Can I try it out before paying anything?", ANSWER_FAQ),
    ("faq", "Is there a trial period, and how long does it last?", ANSWER_FAQ),
    ("faq", "what's your address? I'd like to drop by", ANSWER_FAQ),
    ("faq", "can i stop the subscription whenever i want or am i locked into a contract?", ANSWER_FAQ),
    ("faq", "Do you take SEPA direct debit or only credit cards?", ANSWER_FAQ),
    ("faq", "can I pay by card", ANSWER_FAQ),
    ("faq", "Does it connect to Salesforce? We use it for everything", ANSWER_FAQ),
    ("faq", "Hi there 👋 quick question, does your tool work with HubSpot?", ANSWER_FAQ),
    # Exploring, greeting or stating a need, not ready yet: ask the next qualification question.
    ("qualification", "hey there 👋", ASK_QUALIFICATION),
    ("qualification", "Hello, a friend recommended you and I'm curious", ASK_QUALIFICATION),
    ("qualification", "we're a small team of 4 people", ASK_QUALIFICATION),
    ("qualification", "looking for something for our call centre, about 25 agents", ASK_QUALIFICATION),
    ("qualification", "I think Pro might suit us", ASK_QUALIFICATION),
    ("qualification", "We're interested in enterprise", ASK_QUALIFICATION),
    ("qualification", "not in a rush, maybe after the summer", ASK_QUALIFICATION),
    ("qualification", "we're comparing a few providers at the moment", ASK_QUALIFICATION),
    ("qualification", "evening! just browsing", ASK_QUALIFICATION),
    (
        "qualification",
        "we'd like to get going sometime in january, just researching for now",
        ASK_QUALIFICATION,
    ),
    (
        "qualification",
        "i run a small dental clinic, 2 receptionists, we miss lots of calls",
        ASK_QUALIFICATION,
    ),
    ("qualification", "interested in the starter plan for my shop, maybe later this year", ASK_QUALIFICATION),
    # A hot lead ready to buy now: offer the call button.
    ("hot", "We want Pro for 8 people, can we start Monday? Ready to pay now", OFFER_CALL_BUTTON),
    ("hot", "ok we're convinced. enterprise, 60 seats, need it live by friday", OFFER_CALL_BUTTON),
    ("hot", "sign us up for starter today pls, just me and my partner (2 ppl)", OFFER_CALL_BUTTON),
    ("hot", "Need Pro for our 15-person sales team ASAP, how do we buy?", OFFER_CALL_BUTTON),
    ("hot", "we'd like to purchase 40 enterprise licenses this month, send the contract", OFFER_CALL_BUTTON),
    ("hot", "Let's do it! Pro plan, team of 6, starting right away 🚀", OFFER_CALL_BUTTON),
    ("hot", "Hi, I want to buy the starter plan now for my 3 staff", OFFER_CALL_BUTTON),
    (
        "hot",
        "our current provider shuts down next week, we need 25 agents moved onto your pro plan immediately",
        OFFER_CALL_BUTTON,
    ),
    (
        "hot",
        "Ready to go with Enterprise for 120 users, budget is approved, we want to begin this week",
        OFFER_CALL_BUTTON,
    ),
    ("hot", "pro x 10 users, start tomorrow, where do i pay?", OFFER_CALL_BUTTON),
    # Asks for a human, a person or a call: hand to an agent.
    ("person", "can i speak with a sales rep pls", HAND_TO_AGENT),
    ("person", "I'd rather talk to an actual human than a bot", HAND_TO_AGENT),
    ("person", "Could someone give me a ring on this number?", HAND_TO_AGENT),
    ("person", "is there a phone number I can call?", HAND_TO_AGENT),
    ("person", "connect me to your support staff please", HAND_TO_AGENT),
    ("person", "Are you a robot? I want a person", HAND_TO_AGENT),
    ("person", "pls have someone from your team call me tomorrow morning", HAND_TO_AGENT),
    ("person", "I'd like to schedule a call with your sales team to go over pricing", HAND_TO_AGENT),
    ("person", "human pls", HAND_TO_AGENT),
    ("person", "Hi, can I talk to Sarah from your team? She helped me before", HAND_TO_AGENT),
    # Angry or complaining: hand to an agent.
    ("angry", "I've been charged twice this month and no one replies. Fix it!!", HAND_TO_AGENT),
    ("angry", "your app keeps dropping my calls, this is a joke 😡", HAND_TO_AGENT),
    ("angry", "I've sent 4 messages already. Is anyone even working there?", HAND_TO_AGENT),
    ("angry", "absolutely fed up. cancel everything and give me my money back", HAND_TO_AGENT),
    ("angry", "Terrible experience, I'm going to leave a 1 star review", HAND_TO_AGENT),
    ("angry", "wtf why is my account locked", HAND_TO_AGENT),
    ("angry", "I'm very disappointed with how my complaint has been handled", HAND_TO_AGENT),
    ("angry", "you promised a callback yesterday and nobody called. not happy", HAND_TO_AGENT),
    # Off-topic, or a question the knowledge base cannot answer.
    ("off_topic", "can you recommend a good restaurant in dublin", UNKNOWN),
    ("off_topic", "whats 15% of 240", UNKNOWN),
    ("off_topic", "lol wrong chat, sorry", UNKNOWN),
    ("off_topic", "Do you sell second-hand laptops?", UNKNOWN),
    ("off_topic", "write me a poem about cats", UNKNOWN),
    ("off_topic", "When is the next bus to Galway?", UNKNOWN),
    ("off_topic", "Do you have an Android app?", UNKNOWN),
    ("off_topic", "Is your software GDPR compliant?", UNKNOWN),
]
