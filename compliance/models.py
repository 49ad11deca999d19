from django.conf import settings
from django.db import models

from core.models import TimeStampedModel


class ConsentRecord(models.Model):
    """Proof of what a customer was told: the recording notice of a call, its words and language,
    when it started and when it had been heard to its end (never, if the caller left first)."""

    class Kind(models.TextChoices):
        RECORDING_NOTICE = "recording_notice", "Recording notice played"

    call = models.ForeignKey(
        "calls.Call", null=True, blank=True, on_delete=models.CASCADE, related_name="consent_records"
    )
    contact = models.ForeignKey("messaging.Contact", on_delete=models.CASCADE, related_name="consent_records")
    business_number = models.ForeignKey(
        "whatsapp.BusinessNumber", on_delete=models.PROTECT, related_name="consent_records"
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    language = models.CharField(max_length=8)
    text = models.TextField(help_text="The words the customer heard.")
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True, help_text="Empty: not heard to the end.")

    class Meta:
        ordering = ["-started_at"]
        constraints = [models.UniqueConstraint(fields=["call", "kind"], name="one_consent_record_per_call")]

    def __str__(self) -> str:
        state = "heard" if self.completed_at else "not heard to the end"
        return f"{self.get_kind_display()} ({self.language}, {state})"


class CallPermission(TimeStampedModel):
    """A customer's permission for business-initiated calls from one business number, as we know it.

    Changed only by compliance.services, each change with an AuditEvent in the same transaction.
    `deadline_at` is our own expiry: the earliest of Meta's expiry and the brief's windows (the
    first call within FIRST_CALL_WINDOW_H of the grant; CONNECTED_CALL_EXTENSION_D after a connected
    call); empty for a permanent permission. Request quotas and the connected-call cap are counted
    from the audit trail.
    """

    class Status(models.TextChoices):
        NONE = "none", "No permission"
        REQUESTED = "requested", "Requested (awaiting the customer's reply)"
        TEMPORARY = "temporary", "Temporary"
        PERMANENT = "permanent", "Permanent"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"
        REJECTED = "rejected", "Rejected by the customer"

    class Source(models.TextChoices):
        REQUEST_REPLY = "request_reply", "Reply to a permission request"
        CALLBACK = "callback", "Calling in (callback permission)"
        PROFILE = "profile", "The business profile"

    GRANTED_STATUSES = frozenset({Status.TEMPORARY, Status.PERMANENT})

    business_number = models.ForeignKey(
        "whatsapp.BusinessNumber", on_delete=models.PROTECT, related_name="call_permissions"
    )
    contact = models.ForeignKey(
        "messaging.Contact", on_delete=models.CASCADE, related_name="call_permissions"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NONE, db_index=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, blank=True)
    granted_at = models.DateTimeField(null=True, blank=True)
    meta_expires_at = models.DateTimeField(null=True, blank=True, help_text="Meta's expiry of the grant.")
    deadline_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="Our expiry: Meta's or the brief's, whichever is first.",
    )
    last_connected_at = models.DateTimeField(null=True, blank=True)
    consecutive_unanswered = models.PositiveSmallIntegerField(default=0)
    requests_reset_at = models.DateTimeField(
        null=True, blank=True, help_text="Last connected call either way: request quotas count from here."
    )
    next_call_allowed_at = models.DateTimeField(
        null=True, blank=True, help_text="Meta said (138012) no more calls until then."
    )
    requests_blocked_until = models.DateTimeField(
        null=True, blank=True, help_text="Meta refused a request (138009): none until then."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Who asked for the permission or last called: told when it is lost.",
    )  # fmt: skip

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["business_number", "contact"], name="one_permission_per_pair")
        ]

    def __str__(self) -> str:
        return f"{self.get_status_display()}: {self.contact} from {self.business_number}"

    @property
    def is_granted(self) -> bool:
        return self.status in self.GRANTED_STATUSES


class AuditEvent(models.Model):
    """One change to a call permission, or one thing that counts against it. Append-only."""

    class Kind(models.TextChoices):
        REQUEST_SENT = "request_sent", "Permission request sent"
        GRANTED = "granted", "Granted"
        REJECTED = "rejected", "Rejected"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"
        CALL_PLACED = "call_placed", "Business call placed"
        CALL_CONNECTED = "call_connected", "Business call connected"
        STRIKE = "strike", "Business call unanswered or rejected"
        REQUESTS_RESET = "requests_reset", "Request limits reset by a connected call"
        META_ERROR = "meta_error", "Meta refused"

    permission = models.ForeignKey(CallPermission, on_delete=models.PROTECT, related_name="audit_events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField(db_index=True)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    detail = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["permission", "kind", "at"], name="audit_permission_kind_at")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M:%S}"
