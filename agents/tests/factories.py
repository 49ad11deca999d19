import factory
from django.contrib.auth import get_user_model

from agents.models import Agent, Queue, QueueMembership

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda number: f"user{number}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(user, create, extracted, **kwargs):
        if create:
            user.save(update_fields=["password"])


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    user = factory.SubFactory(UserFactory)


class QueueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Queue

    name = factory.Sequence(lambda number: f"Queue {number}")


class QueueMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = QueueMembership

    queue = factory.SubFactory(QueueFactory)
    agent = factory.SubFactory(AgentFactory)


def supervisor(*, sees_raw_text: bool = False):
    """A staff user in the supervisor group (made again if a flushing test removed it); with
    `sees_raw_text`, one who may also read free text unmasked."""
    from django.contrib.auth.models import Group, Permission

    from agents.services import SUPERVISOR_GROUP, supervisor_group_sync

    if not Group.objects.filter(name=SUPERVISOR_GROUP).exists():
        supervisor_group_sync()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=SUPERVISOR_GROUP))
    if sees_raw_text:
        user.user_permissions.add(Permission.objects.get(codename="view_raw_transcript"))
    return user
