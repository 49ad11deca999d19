from django.core.files.storage import storages
from django.core.signals import setting_changed
from django.db import models
from django.utils.functional import LazyObject, empty

from core.models import TimeStampedModel


class _RecordingsStorage(LazyObject):
    """The "recordings" storage of settings.STORAGES (files under MEDIA_ROOT by default), looked up
    on first use and again whenever STORAGES changes (as Django's own default_storage is)."""

    def _setup(self) -> None:
        self._wrapped = storages["recordings"]


_recordings_storage = _RecordingsStorage()


def recordings_storage():
    return _recordings_storage


def _storages_changed(*, setting: str, **kwargs) -> None:
    if setting == "STORAGES":
        _recordings_storage._wrapped = empty


setting_changed.connect(_storages_changed, dispatch_uid="recordings.storages_changed")


class Recording(TimeStampedModel):
    """A call's audio: one file, both directions as two channels (customer left, agent right)."""

    class Format(models.TextChoices):
        WAV = "wav", "WAV, 16-bit PCM"

    call = models.OneToOneField("calls.Call", on_delete=models.CASCADE, related_name="recording")
    file = models.FileField(storage=recordings_storage, max_length=255)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.WAV)
    channels = models.PositiveSmallIntegerField(default=2)
    sample_rate = models.PositiveIntegerField(default=48_000)
    duration_s = models.FloatField()
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, help_text="Of the stored file, to detect damage.")
    customer_rms = models.FloatField(help_text="Level of the customer's channel (0.0 is silence).")
    agent_rms = models.FloatField(help_text="Level of the agent's channel (0.0 is silence).")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Recording of call {self.call_id} ({self.duration_s:.0f} s)"
