from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from agents.services import agent_freed_listener_register
        from messaging import conversations, preferences, services
        from whatsapp import dispatch

        dispatch.register("message.received", services.message_received)
        dispatch.register("message.status", services.message_status_received)
        dispatch.register_many("message.status", services.message_statuses_received)
        dispatch.register("user.preference", preferences.marketing_preference_received)
        agent_freed_listener_register(conversations.conversations_route_for_agent)
