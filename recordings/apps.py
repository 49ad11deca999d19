from django.apps import AppConfig


class RecordingsConfig(AppConfig):
    name = "recordings"
    verbose_name = "Recordings"

    def ready(self) -> None:
        from calls.signals import recording_finished
        from recordings.services import recording_finished_received

        recording_finished.connect(recording_finished_received, dispatch_uid="recordings.store")
