"""The demo account's templates: one of each category, approved, and usable in the sandbox."""

import pytest

from calls.tests.factories import ContactFactory
from compliance.services import call_button_send, permission_request_send
from messaging.demo import (
    DEMO_CALL_BUTTON_TEMPLATE,
    DEMO_CALL_PERMISSION_TEMPLATE,
    DEMO_TEMPLATES,
    demo_templates_create,
)
from messaging.models import Message, Template
from messaging.services import message_send_template
from messaging.tasks import send_message
from whatsapp.management.commands.sandbox import Command as SandboxCommand
from whatsapp.tests.conftest import sandbox_serving
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db

CUSTOMER = "447700900123"


@pytest.fixture
def number():
    return BusinessNumberFactory(is_sandbox=True)


@pytest.fixture
def sandbox(settings, number):
    """The sandbox as `manage.py sandbox` starts it: with the templates the product holds as approved."""
    demo_templates_create(waba_id=number.waba_id)
    with sandbox_serving(settings, number) as sandbox:
        for template in SandboxCommand()._approved_templates([number]):
            sandbox.thread.call(sandbox.meta.template_create, template["waba_id"], template["body"])
        sandbox.thread.call(sandbox.add_customer, wa_id=CUSTOMER, name="Ada")
        yield sandbox


def test_demo_templates_create_one_approved_template_of_each_category_once(number):
    added = demo_templates_create(waba_id=number.waba_id)
    again = demo_templates_create(waba_id=number.waba_id)

    templates = Template.objects.filter(waba_id=number.waba_id)
    assert added == [template["name"] for template in DEMO_TEMPLATES]
    assert again == []
    assert set(templates.values_list("status", flat=True)) == {"APPROVED"}
    assert set(templates.values_list("category", flat=True)) == {"marketing", "utility", "authentication"}
    with_call_button = [
        template.name
        for template in templates
        for component in template.components
        if component["type"] == "BUTTONS" and component["buttons"][0]["type"] == "VOICE_CALL"
    ]
    assert sorted(with_call_button) == [DEMO_CALL_BUTTON_TEMPLATE, "spring_offer"]


def test_every_demo_template_reaches_a_customer_whose_window_is_closed(number, sandbox):
    contact = ContactFactory(wa_id=CUSTOMER)
    parameters = {
        "spring_offer": ["Ada"],
        "order_update": ["A-1042", "Friday"],
        "verification_code": ["482913"],
    }

    sent = []
    for template in Template.objects.filter(waba_id=number.waba_id).order_by("name"):
        message = message_send_template(
            business_number=number,
            contact=contact,
            template=template,
            parameters=parameters.get(template.name),
        )
        sent.append(bool(send_message(message_id=message.pk)))

    assert sent == [True] * len(DEMO_TEMPLATES)
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}


def test_the_demo_outreach_templates_carry_the_fallbacks_once_the_window_has_closed(
    number, sandbox, settings
):
    settings.CALL_PERMISSION_TEMPLATE = DEMO_CALL_PERMISSION_TEMPLATE
    settings.CALL_BUTTON_TEMPLATE = DEMO_CALL_BUTTON_TEMPLATE
    contact = ContactFactory(wa_id=CUSTOMER)

    call_button_send(business_number=number, contact=contact)
    permission_request_send(business_number=number, contact=contact)

    sent = [(message.message_type, message.body.get("template", {}).get("name")) for message in
            sandbox.meta.messages.values()]  # fmt: skip
    assert sent == [("template", DEMO_CALL_BUTTON_TEMPLATE), ("template", DEMO_CALL_PERMISSION_TEMPLATE)]
