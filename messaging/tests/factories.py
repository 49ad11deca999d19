import factory
from django.utils import timezone

from calls.tests.factories import ContactFactory
from messaging.models import Conversation
from whatsapp.tests.factories import BusinessNumberFactory


class ConversationFactory(factory.django.DjangoModelFactory):
    """A conversation waiting for an agent since now."""

    class Meta:
        model = Conversation

    contact = factory.SubFactory(ContactFactory)
    business_number = factory.SubFactory(BusinessNumberFactory)
    state = Conversation.State.WAITING
    unread_count = 1
    last_message_at = factory.LazyFunction(timezone.now)
    opened_at = factory.LazyFunction(timezone.now)
    waiting_since = factory.LazyFunction(timezone.now)
