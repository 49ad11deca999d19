from django.apps import AppConfig


class WhatsappConfig(AppConfig):
    name = "whatsapp"
    verbose_name = "WhatsApp Cloud API"

    def ready(self) -> None:
        from core.metrics import metrics_source_register
        from whatsapp import dispatch, services
        from whatsapp.metrics import webhook_metrics

        metrics_source_register(webhook_metrics)

        dispatch.register("account.settings_update", services.business_number_apply_settings_update)
        dispatch.register("account.update", services.business_number_apply_account_update)
        for kind in ("call.sip_created", "call.recording_available", "call.transcription_available"):
            dispatch.register(kind, services.call_side_event_record)
