"""The demo number's assistant: on, with the sample business's knowledge base and qualification
questions (assistant.samples), so that the demo's customers are answered first by text."""

from django.db import transaction

from assistant import samples
from assistant.models import AssistantSettings, KnowledgeEntry, QualificationQuestion
from whatsapp.models import BusinessNumber


@transaction.atomic
def demo_assistant_create(*, phone_number_id: str) -> bool:
    """Turn the number's assistant on with the sample knowledge base, once: whether it was made now
    (a number whose assistant was set up already is left as it is)."""
    number = BusinessNumber.objects.get(phone_number_id=phone_number_id)
    _, created = AssistantSettings.objects.get_or_create(
        business_number=number, defaults={"is_enabled": True, "hot_threshold": samples.HOT_THRESHOLD}
    )
    if not created:
        return False
    KnowledgeEntry.objects.bulk_create(
        KnowledgeEntry(
            business_number=number, question=entry.question, answer=entry.answer, price=entry.price
        )
        for entry in samples.ENTRIES
    )
    QualificationQuestion.objects.bulk_create(
        QualificationQuestion(
            business_number=number,
            lead_field=question.lead_field,
            question=question.question,
            position=position,
        )
        for position, question in enumerate(samples.QUESTIONS)
    )
    return True
