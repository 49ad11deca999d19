"""The assistant that answers a business number's customers first, by text: what it knows (the
knowledge base admins edit), what it asks (qualification questions), how it is set per number, and
what it has learnt of each conversation's lead."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.models import TimeStampedModel


class LeadField(models.TextChoices):
    PLAN = "plan", "Plan"
    TEAM_SIZE = "team_size", "Team size"
    TIMELINE = "timeline", "Timeline"
    BUDGET = "budget", "Budget"


class AssistantSettings(TimeStampedModel):
    """Whether the assistant answers a business number's new conversations, and when."""

    class Hours(models.TextChoices):
        ALWAYS = "always", "Always"
        BUSINESS_HOURS = "business_hours", "Within the queue's business hours"

    business_number = models.OneToOneField(
        "whatsapp.BusinessNumber", on_delete=models.CASCADE, related_name="assistant_settings"
    )
    is_enabled = models.BooleanField(default=False)
    hours = models.CharField(max_length=16, choices=Hours.choices, default=Hours.ALWAYS)
    hot_threshold = models.PositiveSmallIntegerField(
        default=70,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="A lead scoring more than this (of 100) is hot: offered the call button at once.",
    )

    class Meta:
        verbose_name = "assistant settings"
        verbose_name_plural = "assistant settings"

    def __str__(self) -> str:
        return f"Assistant of {self.business_number}"


class KnowledgeEntry(TimeStampedModel):
    """A question customers ask and the business's answer; the price, when there is one, is the only
    price the assistant ever quotes."""

    business_number = models.ForeignKey(
        "whatsapp.BusinessNumber", on_delete=models.CASCADE, related_name="knowledge_entries"
    )
    question = models.CharField(max_length=300)
    answer = models.TextField()
    price = models.CharField(max_length=100, blank=True, help_text='As quoted, e.g. "€49 per month".')

    class Meta:
        verbose_name_plural = "knowledge entries"
        ordering = ["business_number", "question"]

    def __str__(self) -> str:
        return self.question


class QualificationQuestion(TimeStampedModel):
    """A question the assistant asks to qualify a lead; the answer fills one of the lead's fields."""

    business_number = models.ForeignKey(
        "whatsapp.BusinessNumber", on_delete=models.CASCADE, related_name="qualification_questions"
    )
    lead_field = models.CharField(max_length=16, choices=LeadField.choices)
    question = models.CharField(max_length=300)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["business_number", "position", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["business_number", "lead_field"], name="one_qualification_question_per_lead_field"
            )
        ]

    def __str__(self) -> str:
        return self.question


class Lead(TimeStampedModel):
    """What the assistant learnt of a conversation's customer: their lead fields and score."""

    conversation = models.OneToOneField(
        "messaging.Conversation", on_delete=models.CASCADE, related_name="lead"
    )

    class Sentiment(models.TextChoices):
        CALM = "calm", "Calm"
        ANGRY = "angry", "Angry"

    fields = models.JSONField(default=dict, blank=True, help_text="Lead field → the customer's answer.")
    score = models.PositiveSmallIntegerField(default=0)
    intent = models.CharField(
        max_length=200,
        blank=True,
        help_text="What the customer wants, in a few words (the last decision's reason).",
    )
    sentiment = models.CharField(max_length=8, choices=Sentiment.choices, default=Sentiment.CALM)
    summary = models.TextField(
        blank=True, help_text="One paragraph for the agent: intent, lead fields, score and sentiment."
    )
    replies = models.PositiveSmallIntegerField(default=0, help_text="The assistant's replies so far.")
    call_button_sent_at = models.DateTimeField(null=True, blank=True)
    handed_over_at = models.DateTimeField(null=True, blank=True)
    handed_over_because = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"Lead of conversation {self.conversation_id}"
