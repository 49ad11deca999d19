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


def supervisor_group_after_migrate(app_config, **kwargs) -> None:
    """Every `migrate` puts the supervisor group back to its permissions, once: after the last app's
    post_migrate, when Django has made every app's permissions."""
    from django.apps import apps

    from agents.services import supervisor_group_sync

    if app_config is [config for config in apps.get_app_configs() if config.models_module][-1]:
        supervisor_group_sync()
