import factory

from whatsapp.models import BusinessNumber
from whatsapp.sandbox.meta import ENABLED_CALLING_SETTINGS


class BusinessNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BusinessNumber
        django_get_or_create = ["phone_number_id"]

    phone_number_id = factory.Sequence(lambda number: f"10{number:013d}")
    waba_id = "200000000000001"
    display_phone_number = factory.Sequence(lambda number: f"+44 20 7946 {number % 10000:04d}")
    country = "GB"
    calling_settings = factory.LazyFunction(lambda: dict(ENABLED_CALLING_SETTINGS))
