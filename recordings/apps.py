from django.apps import AppConfig


class RecordingsConfig(AppConfig):
    name = "recordings"
    verbose_name = "Recordings"

    def ready(self) -> None:
        from calls.selectors import wallboard_part_register
        from calls.signals import call_filed, recording_finished
        from recordings.selectors import after_calls_backlog
        from recordings.services import call_filed_received, recording_finished_received

        recording_finished.connect(recording_finished_received, dispatch_uid="recordings.store")
        call_filed.connect(call_filed_received, dispatch_uid="recordings.summarise_filed")
        wallboard_part_register(after_calls_backlog)
        from core.metrics import metrics_source_register
        from recordings.metrics import after_calls_metrics

        metrics_source_register(after_calls_metrics)
