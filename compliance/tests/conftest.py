import pytest

from compliance.tests.factories import CUSTOMER
from whatsapp.tests import payloads
from whatsapp.tests.conftest import sandbox_serving
from whatsapp.tests.factories import BusinessNumberFactory


@pytest.fixture
def number():
    return BusinessNumberFactory(
        phone_number_id=payloads.PHONE_NUMBER_ID, display_phone_number="+44 20 7946 0000"
    )


@pytest.fixture
def sandbox(settings, number):
    with sandbox_serving(settings, number) as sandbox:
        customer = sandbox.thread.call(sandbox.add_customer, wa_id=CUSTOMER, name="Ada")
        # The customer wrote a moment ago: the 24-hour window is open for free-form messages.
        sandbox.thread.call(
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
