from django.apps import AppConfig


class RecordingsConfig(AppConfig):
    name = "recordings"
    verbose_name = "Recordings"

    def ready(self) -> None:
        from calls.signals import call_filed, recording_finished
        from recordings.services import call_filed_received, recording_finished_received

        recording_finished.connect(recording_finished_received, dispatch_uid="recordings.store")
        call_filed.connect(call_filed_received, dispatch_uid="recordings.summarise_filed")
