from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self) -> None:
        from compliance import services
        from whatsapp import dispatch

        dispatch.register("message.call_permission_reply", services.permission_record_reply)
