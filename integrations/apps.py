from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations (API keys)"

    def ready(self) -> None:
        from integrations import schema  # noqa: F401  (registers the API key with the OpenAPI schema)
