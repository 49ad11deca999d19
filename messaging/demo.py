"""The demo account's message templates: one of each category Meta prices (marketing, utility,
authentication), as a business would have them approved, so that the demo can write to a customer
whose 24-hour window has closed, ask for permission to call and send a "Call us" button."""

from django.db import transaction

from messaging.models import Template

DEMO_TEMPLATE_LANGUAGE = "en"
# The names `make run` gives CALL_PERMISSION_TEMPLATE and CALL_BUTTON_TEMPLATE.
DEMO_CALL_PERMISSION_TEMPLATE = "call_permission"
DEMO_CALL_BUTTON_TEMPLATE = "call_us"

# Meta's template-creation bodies (POST /<WABA_ID>/message_templates, ../shared/WHATSAPP_API.md §3.2
# and §4.4): a voice-call button is one BUTTONS entry of type VOICE_CALL, at most one per template.
DEMO_TEMPLATES: list[dict] = [
    {
        "name": "spring_offer",
        "category": "MARKETING",
        "components": [
            {"type": "BODY", "text": "Hi {{1}}, our spring plans are 20% off until Friday. Tap below to "
             "talk to us about yours.", "example": {"body_text": [["Maria"]]}},
            {"type": "BUTTONS", "buttons": [{"type": "VOICE_CALL", "text": "Call us", "ttl_minutes": 1440}]},
        ],
    },
    {
        "name": "order_update",
        "category": "UTILITY",
        "components": [
            {"type": "BODY", "text": "Your order {{1}} has shipped and arrives on {{2}}.",
             "example": {"body_text": [["A-1042", "Friday"]]}},
        ],
    },
    {
        "name": "verification_code",
        "category": "AUTHENTICATION",
        "components": [
            {"type": "BODY", "text": "{{1}} is your verification code. For your security, do not share it.",
             "example": {"body_text": [["482913"]]}},
        ],
    },
    {
        "name": DEMO_CALL_PERMISSION_TEMPLATE,
        "category": "UTILITY",
        "components": [
            {"type": "BODY", "text": "We would like to call you about your request. "
             "May we call you on WhatsApp?"},
            {"type": "call_permission_request"},
        ],
    },
    {
        "name": DEMO_CALL_BUTTON_TEMPLATE,
        "category": "UTILITY",
        "components": [
            {"type": "BODY", "text": "We tried to reach you. "
             "Tap below to call us on WhatsApp when it suits you."},
            {"type": "BUTTONS", "buttons": [{"type": "VOICE_CALL", "text": "Call us", "ttl_minutes": 1440}]},
        ],
    },
]  # fmt: skip


@transaction.atomic
def demo_templates_create(*, waba_id: str) -> list[str]:
    """Add the demo templates the account lacks, approved (the sandbox approves every template it is
    given, and registers these when it starts). Returns the names added now."""
    known = set(
        Template.objects.filter(waba_id=waba_id, language=DEMO_TEMPLATE_LANGUAGE).values_list(
            "name", flat=True
        )
    )
    added = [template for template in DEMO_TEMPLATES if template["name"] not in known]
    Template.objects.bulk_create(
        Template(
            waba_id=waba_id,
            name=template["name"],
            language=DEMO_TEMPLATE_LANGUAGE,
            category=template["category"].lower(),
            components=template["components"],
            status=Template.Status.APPROVED,
        )
        for template in added
    )
    return [template["name"] for template in added]
