import pytest

from compliance.tests.factories import CUSTOMER
from whatsapp.sandbox.meta import Rules
from whatsapp.sandbox.server import SandboxThread
from whatsapp.tests import payloads
from whatsapp.tests.factories import BusinessNumberFactory


@pytest.fixture
def number():
    return BusinessNumberFactory(
        phone_number_id=payloads.PHONE_NUMBER_ID, display_phone_number="+44 20 7946 0000"
    )


@pytest.fixture
def sandbox(settings, number):
    thread = SandboxThread(webhook_url=None, app_secret="s", token="t", rules=Rules())
    with thread as sandbox:
        settings.WHATSAPP_GRAPH_URL, settings.WHATSAPP_TOKEN, settings.WHATSAPP_MAX_RETRIES = (
            sandbox.graph_url,
            "t",
            0,
        )
        thread.call(sandbox.add_number, phone_number_id=number.phone_number_id, waba_id=number.waba_id,
                    display_phone_number=number.display_phone_number)  # fmt: skip
        customer = thread.call(sandbox.add_customer, wa_id=CUSTOMER, name="Ada")
        # The customer wrote a moment ago: the 24-hour window is open for free-form messages.
        thread.call(
            sandbox.meta.customer_send,
            customer,
            number.phone_number_id,
            {"type": "text", "text": {"body": "Hi"}},
        )
        yield sandbox


@pytest.fixture
def told(monkeypatch):
    """The permission ids each "permission lost" notice named, from a listener of this test only."""
    from compliance import services

    notices: list[list[int]] = []
    monkeypatch.setattr(services, "_lost_listeners", [*services._lost_listeners])
    services.permission_lost_listener_register(notices.append)
    return notices
