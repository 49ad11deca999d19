from django.conf import settings
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
    """A call's audio: one file, both directions as two channels (customer left, agent right): Ogg Opus,
    the packets each side sent (WAV for recordings of earlier versions), sealed at rest
    (recordings.crypto) with the key named by `key_id`.

    `status` follows the work done after the call: transcribed, then summarised."""

    class Format(models.TextChoices):
        WAV = "wav", "WAV, 16-bit PCM"
        OGG_OPUS = "ogg_opus", "Ogg Opus, the call's packets as sent"

    # The file's extension and media type by format. WAV: recordings of earlier versions.
    EXTENSIONS = {Format.WAV: "wav", Format.OGG_OPUS: "ogg"}
    MEDIA_TYPES = {Format.WAV: "audio/wav", Format.OGG_OPUS: "audio/ogg"}

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        TRANSCRIBING = "transcribing", "Transcribing"
        SUMMARISING = "summarising", "Summarising"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    IN_PROGRESS = (Status.QUEUED, Status.TRANSCRIBING, Status.SUMMARISING)  # the work after the call

    call = models.OneToOneField("calls.Call", on_delete=models.CASCADE, related_name="recording")
    file = models.FileField(storage=recordings_storage, max_length=255)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.WAV)
    channels = models.PositiveSmallIntegerField(default=2)
    sample_rate = models.PositiveIntegerField(default=48_000)
    duration_s = models.FloatField()
    size_bytes = models.PositiveBigIntegerField(help_text="Of the audio, before sealing.")
    sha256 = models.CharField(max_length=64, help_text="Of the stored (sealed) file, to detect damage.")
    key_id = models.CharField(
        "encryption key", max_length=64, blank=True, help_text="Empty: stored before encryption at rest."
    )
    customer_rms = models.FloatField(
        null=True, help_text="Level of the customer's channel (0.0 is silence), measured when transcribed."
    )
    agent_rms = models.FloatField(
        null=True, help_text="Level of the agent's channel (0.0 is silence), measured when transcribed."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Of the current step, in percent.")
    failure = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("listen_recording", "Can listen to any call's recording"),
            ("view_raw_transcript", "Can read transcripts and summaries unredacted"),
        ]

    def __str__(self) -> str:
        return f"Recording of call {self.call_id} ({self.duration_s:.0f} s)"


class Transcript(TimeStampedModel):
    """What was said on a call, by whom and when: segments of the recording's two channels merged
    by time. `segments` holds {"start_s", "end_s", "speaker", "text", "confidence"} objects; `text`
    is the whole call as plain text, for search."""

    call = models.OneToOneField("calls.Call", on_delete=models.CASCADE, related_name="transcript")
    recording = models.OneToOneField(Recording, on_delete=models.CASCADE, related_name="transcript")
    segments = models.JSONField(default=list)
    text = models.TextField(blank=True)
    model = models.CharField(max_length=200, help_text="The speech-to-text model that wrote it.")
    seconds_taken = models.FloatField(help_text="Processing time, for the real-time factor.")

    def __str__(self) -> str:
        return f"Transcript of call {self.call_id}"


class Summary(TimeStampedModel):
    """A call in one paragraph: the customer's intent, the outcome and how the customer sounded.

    A call with no conversation (nobody answered, or nothing said could be transcribed: outcome
    "no_conversation") has no intent and no sentiment."""

    class Sentiment(models.TextChoices):
        POSITIVE = "positive", "Positive"
        NEUTRAL = "neutral", "Neutral"
        NEGATIVE = "negative", "Negative"

    call = models.OneToOneField("calls.Call", on_delete=models.CASCADE, related_name="summary")
    paragraph = models.TextField()
    intent = models.CharField(max_length=32, blank=True, db_index=True, help_text="Empty: no conversation.")
    outcome = models.CharField(max_length=32, db_index=True)
    sentiment = models.CharField(
        max_length=8,
        choices=Sentiment.choices,
        blank=True,
        db_index=True,
        help_text="Empty: no conversation.",
    )
    sentiment_score = models.FloatField(
        null=True,
        blank=True,
        help_text="-1 (negative) to 1 (positive), the customer's side; empty: no conversation.",
    )
    backend = models.CharField(max_length=16)
    note = models.CharField(max_length=255, blank=True, help_text="E.g. why the chosen backend was not used.")
    call_as_of = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The call's last change when its facts were read: a call changed since is summarised anew.",
    )

    class Meta:
        verbose_name_plural = "summaries"

    def __str__(self) -> str:
        return f"Summary of call {self.call_id}"


class Erasure(models.Model):
    """The audit row of personal data removed: a contact's on request (GDPR), or recordings past
    their number's retention. Says who, when, why and how much; holds none of the data itself."""

    class Kind(models.TextChoices):
        CONTACT = "contact", "A contact's personal data, on request"
        RETENTION = "retention", "Recordings past their retention"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    contact = models.ForeignKey(
        "messaging.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    contact_label = models.CharField(max_length=64, blank=True, help_text="The number, masked.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField(db_index=True)
    counts = models.JSONField(default=dict, help_text="Rows and files removed, by kind.")
    pending_files = models.JSONField(
        default=list,
        blank=True,
        help_text="Files that could not be deleted yet; the hourly sweep tries again.",
    )

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"
