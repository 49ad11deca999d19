import factory

from calls.tests.factories import ContactFactory
from compliance.models import CallPermission
from whatsapp.tests.factories import BusinessNumberFactory


class CallPermissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CallPermission

    business_number = factory.SubFactory(BusinessNumberFactory)
    contact = factory.SubFactory(ContactFactory)


CUSTOMER = (
    "447700900123"  # a UK customer (whatsapp.tests.payloads.CUSTOMER is in the US, where calls are blocked)
)


def sent_requests(sandbox) -> int:
    """How many call permission requests the sandbox's Meta received."""
    return sum(1 for message in sandbox.meta.messages.values() if sandbox.meta.is_permission_request(message))
