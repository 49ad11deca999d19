import contextlib

from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents and queues"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from agents.services import agents_tell_permission_lost
        from compliance.services import permission_lost_listener_register

        permission_lost_listener_register(agents_tell_permission_lost)
        post_migrate.connect(supervisor_group_after_migrate, dispatch_uid="agents.supervisor_group")


def supervisor_group_after_migrate(**kwargs) -> None:
    """Every `migrate` puts the supervisor group back to its permissions. Django makes each app's
    permissions as that app's post_migrate is sent, so until the last app's they may not all exist
    yet: until then there is nothing to do."""
    from agents.services import supervisor_group_sync

    with contextlib.suppress(LookupError):
        supervisor_group_sync()
