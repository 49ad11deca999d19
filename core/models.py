from django.conf import settings
from django.db import models


class TimeStampedModel(models.Model):
    """Base for the product's models: when a row was created and last changed."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class SignInLockout(models.Model):
    """An account or a client address locked out after too many failed sign-ins (core.signins):
    the audit of lockouts, written when one starts."""

    class Kind(models.TextChoices):
        ACCOUNT = "account", "account"
        ADDRESS = "address", "address"

    class Where(models.TextChoices):
        LOGIN = "login", "sign-in page"
        ADMIN = "admin", "admin"
        WIDGET = "widget", "call widget"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    where = models.CharField(
        max_length=16, choices=Where.choices, help_text="The sign-in that reached the limit."
    )
    username = models.CharField(max_length=150, help_text="As typed in the last failed sign-in.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    address = models.GenericIPAddressField(null=True, blank=True)
    failures = models.PositiveIntegerField()
    until = models.DateTimeField()

    class Meta:
        ordering = ["-at"]
        verbose_name = "sign-in lockout"

    def __str__(self) -> str:
        return f"{self.kind} lockout at {self.at:%Y-%m-%d %H:%M}"
