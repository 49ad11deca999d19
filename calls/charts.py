"""The wallboard's charts of the day, drawn on the server as SVG (no chart library in the browser):
calls per hour (answered, abandoned, other endings), the service level per hour, and the mix of the
summaries' sentiment. The same markup goes into the page and, when the day changes, over the
wallboard's socket."""

from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 180
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 34, 22, 10
COLOURS = {
    "answered": "#0b7a5b",
    "abandoned": "#d97706",
    "other": "#9ca3af",
    "positive": "#0b7a5b",
    "neutral": "#9ca3af",
    "negative": "#dc2626",
    "service_level": "#1d4ed8",
}


@dataclass(frozen=True)
class Hour:
    """One hour of the day: inbound calls that reached a queue, by how they went, and the hour's
    service level (None when no call counts for it)."""

    hour: int
    answered: int = 0
    abandoned: int = 0
    other: int = 0
    service_level: float | None = None

    @property
    def total(self) -> int:
        return self.answered + self.abandoned + self.other


def _n(value: float) -> str:
    """A coordinate, as SVG reads it (format_html escapes its arguments, so numbers come formatted)."""
    return f"{value:.1f}"


def _frame(title: str, body: SafeString, *, label: str) -> SafeString:
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" data-chart="{}">'
        "<title>{}</title>{}</svg>",
        WIDTH,
        HEIGHT,
        title,
        label,
        title,
        body,
    )


def _hour_ticks(step: float) -> SafeString:
    return format_html_join(
        "",
        '<text x="{}" y="{}" class="tick" text-anchor="middle">{}</text>',
        ((_n(MARGIN_LEFT + (hour + 0.5) * step), HEIGHT - 6, f"{hour:02d}") for hour in range(0, 24, 3)),
    )


def calls_per_hour_svg(hours: list[Hour]) -> SafeString:
    """Stacked bars per hour: answered, abandoned, other; the tallest bar sets the scale."""
    plot_w, plot_h = WIDTH - MARGIN_LEFT - 4, HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    step = plot_w / 24
    top = max([hour.total for hour in hours] + [1])
    bars = []
    for hour in hours:
        y = HEIGHT - MARGIN_BOTTOM
        for part in ("answered", "abandoned", "other"):
            count = getattr(hour, part)
            if not count:
                continue
            height = plot_h * count / top
            y -= height
            bars.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" data-hour="{}" '
                    'data-part="{}" data-count="{}"><title>{}:00 {} {}</title></rect>',
                    _n(MARGIN_LEFT + hour.hour * step + 1),
                    _n(y),
                    _n(step - 2),
                    _n(height),
                    COLOURS[part],
                    hour.hour,
                    part,
                    count,
                    f"{hour.hour:02d}",
                    count,
                    part,
                )
            )
    axis = format_html(
        '<text x="4" y="{}" class="tick">{}</text><text x="4" y="{}" class="tick">0</text>',
        MARGIN_TOP + 10,
        top,
        HEIGHT - MARGIN_BOTTOM,
    )
    return _frame("Calls per hour", mark_safe("".join(bars)) + axis + _hour_ticks(step), label="calls")


def service_level_svg(hours: list[Hour], *, goal: float) -> SafeString:
    """The service level of each hour (points joined where hours follow each other), against the goal."""
    plot_w, plot_h = WIDTH - MARGIN_LEFT - 4, HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    step = plot_w / 24

    def y_of(share: float) -> float:
        return HEIGHT - MARGIN_BOTTOM - plot_h * share

    points = [
        (MARGIN_LEFT + (hour.hour + 0.5) * step, y_of(hour.service_level), hour)
        for hour in hours
        if hour.service_level is not None
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="3" fill="{}" data-hour="{}" data-service-level="{}">'
        "<title>{}:00 {}</title></circle>",
        (
            (
                _n(x),
                _n(y),
                COLOURS["service_level"],
                hour.hour,
                f"{hour.service_level:.3f}",
                f"{hour.hour:02d}",
                f"{hour.service_level:.0%}",
            )
            for x, y, hour in points
        ),
    )
    body = format_html(
        '<line x1="{}" x2="{}" y1="{}" y2="{}" class="goal"/>'
        '<text x="4" y="{}" class="tick">{}</text>'
        '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>{}'
        '<text x="4" y="{}" class="tick">100%</text><text x="4" y="{}" class="tick">0%</text>',
        MARGIN_LEFT,
        WIDTH - 4,
        _n(y_of(goal)),
        _n(y_of(goal)),
        _n(y_of(goal) + 4),
        f"{goal:.0%}",
        line,
        COLOURS["service_level"],
        dots,
        MARGIN_TOP + 10,
        HEIGHT - MARGIN_BOTTOM,
    )
    return _frame("Service level per hour", body + _hour_ticks(step), label="service-level")


def sentiment_svg(mix: dict[str, int]) -> SafeString:
    """One bar split by the sentiment of the day's summarised conversations (calls an agent took),
    each part labelled with its count."""
    total = sum(mix.values())
    x, parts = float(MARGIN_LEFT), []
    for sentiment in ("positive", "neutral", "negative"):
        count = mix.get(sentiment, 0)
        if not count:
            continue
        width = (WIDTH - MARGIN_LEFT - 4) * count / total
        parts.append(
            format_html(
                '<rect x="{}" y="60" width="{}" height="40" fill="{}" data-sentiment="{}" '
                'data-count="{}"><title>{} {}</title></rect>'
                '<text x="{}" y="120" class="tick">{} {}</text>',
                _n(x),
                _n(width),
                COLOURS[sentiment],
                sentiment,
                count,
                count,
                sentiment,
                _n(x + 2),
                count,
                sentiment,
            )
        )
        x += width
    if not parts:
        parts.append(
            format_html(
                '<text x="{}" y="85" class="tick">No summarised conversations yet today.</text>', MARGIN_LEFT
            )
        )
    return _frame("Sentiment of the day's conversations", mark_safe("".join(parts)), label="sentiment")
