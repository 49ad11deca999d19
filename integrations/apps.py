from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations (API keys)"

    def ready(self) -> None:
        from core.events import event_sink_register
        from integrations import schema  # noqa: F401  (registers the API key with the OpenAPI schema)
        from integrations.webhooks import event_received, subscribed

        event_sink_register(event_received, wants=subscribed)
