import pytest
from django.utils import timezone

from agents.tests.factories import QueueFactory
from campaigns.models import OptIn
from messaging.models import Template
from messaging.services import contact_get_or_create
from whatsapp.tests import payloads
from whatsapp.tests.factories import BusinessNumberFactory

TEMPLATE_COMPONENTS = [
    {"type": "BODY", "text": "Spring offer for {{1}}: call us on WhatsApp"},
    {"type": "BUTTONS", "buttons": [{"type": "VOICE_CALL", "text": "Call us", "ttl_minutes": 1440}]},
]


@pytest.fixture
def number(db):
    """The number Meta's test payloads write to, with a queue for the calls a campaign brings."""
    number = BusinessNumberFactory(
        phone_number_id=payloads.PHONE_NUMBER_ID,
        waba_id=payloads.WABA_ID,
        display_phone_number="+1 317-555-1399",
    )
    QueueFactory(name="Care").business_numbers.add(number)
    return number


@pytest.fixture
def template(number):
    return Template.objects.create(
        waba_id=number.waba_id, name="spring_offer", language="en", category="marketing",
        status=Template.Status.APPROVED, components=TEMPLATE_COMPONENTS,
    )  # fmt: skip


@pytest.fixture
def opted_in(number):
    """Customers who agreed to hear from the number (an OptIn each): their WhatsApp ids."""

    def make(*wa_ids: str) -> list[str]:
        for wa_id in wa_ids:
            OptIn.objects.create(
                business_number=number, contact=contact_get_or_create(wa_id=wa_id), at=timezone.now(),
                source=OptIn.Source.IMPORT, detail="Shop's newsletter form",
            )  # fmt: skip
        return list(wa_ids)

    return make


def sandbox_template(sandbox, template) -> None:
    """Register the template with the sandbox's Meta (as it was approved there)."""
    sandbox.thread.call(sandbox.meta.template_create, template.waba_id, {
        "name": template.name, "category": template.category.upper(), "components": template.components,
    })  # fmt: skip
