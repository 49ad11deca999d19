from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from messaging import services
        from whatsapp import dispatch

        dispatch.register("message.received", services.message_received)
        dispatch.register("message.status", services.message_status_received)
