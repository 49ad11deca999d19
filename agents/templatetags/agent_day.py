"""How long, for people: `{{ seconds|clock }}` reads "1 h 05 min", "12 min" or "under a minute"."""

from django import template

register = template.Library()


@register.filter
def clock(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return "under a minute"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
