import factory
from django.utils import timezone

from agents.tests.factories import QueueFactory
from calls.models import Call
from messaging.models import Contact
from whatsapp.tests.factories import BusinessNumberFactory


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact
        django_get_or_create = ["wa_id"]

    # Apart from the numbers tests write out (447700 9xxxxx), which a long run would otherwise reach.
    wa_id = factory.Sequence(lambda number: f"4477008{number:05d}")
    name = factory.Faker("name")
    country = "GB"


class CallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Call

    wa_call_id = factory.Sequence(lambda number: f"wacid.TEST{number:08d}")
    business_number = factory.SubFactory(BusinessNumberFactory)
    contact = factory.SubFactory(ContactFactory)
    direction = Call.Direction.INBOUND
    status = Call.Status.QUEUED
    queue = factory.SubFactory(QueueFactory)
    started_at = factory.LazyFunction(timezone.now)
    queued_at = factory.LazyFunction(timezone.now)
