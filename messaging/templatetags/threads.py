"""How a message of a thread reads: `{% thread_message message %}` (the file it carries, its text as
the viewer may read it, the customer's reaction to it, what could not be read of it)."""

from django import template

from core.access import viewer_of

register = template.Library()


@register.inclusion_tag("messaging/thread_message.html", takes_context=True)
def thread_message(context, message) -> dict:
    viewer = viewer_of(context["request"])
    return {"message": message, "text": viewer.text(message.text, country=message.contact.country)}
