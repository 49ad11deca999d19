from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "assistant"
    verbose_name = "Assistant"

    def ready(self) -> None:
        from assistant.services import assistant_answers, assistant_message_joined
        from messaging.conversations import FirstResponder, first_responder_register

        first_responder_register(
            FirstResponder(answers=assistant_answers, message_joined=assistant_message_joined)
        )
