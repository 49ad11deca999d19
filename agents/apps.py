from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents and queues"

    def ready(self) -> None:
        from agents.services import agents_tell_permission_lost
        from compliance.services import permission_lost_listener_register

        permission_lost_listener_register(agents_tell_permission_lost)
