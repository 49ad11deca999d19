"""The costs page: what the account spends on messages and calls, and what customers' calls save; the
files customers sent, to those who see their messages."""

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.decorators import login_required, permission_required
from django.http import FileResponse
from django.shortcuts import get_object_or_404, render
from rest_framework.exceptions import ValidationError

from core.access import viewer_of
from messaging.models import Message, RateCard
from messaging.reports import report_period
from messaging.selectors import SpendRow, call_cost_totals, call_costs_by_day, spend_by_day, spend_totals

CHART_WIDTH, CHART_HEIGHT = 720, 180
CATEGORY_COLOURS = {
    RateCard.Category.MARKETING: "#0b7a5b",
    RateCard.Category.MARKETING_LITE: "#34a37f",
    RateCard.Category.UTILITY: "#2563eb",
    RateCard.Category.AUTHENTICATION: "#d97706",
    RateCard.Category.AUTHENTICATION_INTERNATIONAL: "#b45309",
    RateCard.Category.SERVICE: "#6b7280",
    RateCard.Category.CALL: "#7c3aed",
}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str


@dataclass(frozen=True)
class Chart:
    currency: str
    bars: list[Bar]
    peak: Decimal
    categories: list[tuple[str, str]]  # (label, colour) of the categories drawn


@login_required
@permission_required("messaging.view_charge", raise_exception=True)
def costs(request):
    """GET ?since=&until= (UTC days, the last 30 by default): spend by day as a chart per currency,
    the ledger's rows, and connected calls with the saving of letting customers call in."""
    try:
        since, until = report_period(request.GET)
        error = None
    except ValidationError as invalid:
        since = until = None
        error = "; ".join(str(message) for messages in invalid.detail.values() for message in messages)
    context = {"since": since, "until": until, "error": error}
    if error is None:
        rows = spend_by_day(since=since, until=until)
        call_rows = call_costs_by_day(since=since, until=until)
        context |= {
            "rows": rows,
            "totals": spend_totals(rows),
            "charts": spend_charts(rows, since=since, until=until),
            "call_rows": call_rows,
            "call_totals": call_cost_totals(call_rows),
        }
    return render(request, "messaging/costs.html", context, status=400 if error else 200)


def spend_charts(rows: list[SpendRow], *, since: datetime.date, until: datetime.date) -> list[Chart]:
    """One bar chart per currency: a bar a day, stacked by category, scaled to the busiest day."""
    days = (until - since).days + 1
    slot = CHART_WIDTH / days
    charts = []
    for currency in sorted({row.currency for row in rows if row.amount}):
        mine = [row for row in rows if row.currency == currency and row.amount]
        by_day: dict[datetime.date, dict[str, Decimal]] = {}
        for row in mine:
            day = by_day.setdefault(row.day, {})
            day[row.category] = day.get(row.category, Decimal(0)) + row.amount
        peak = max(sum(amounts.values()) for amounts in by_day.values())
        bars = []
        for day, amounts in sorted(by_day.items()):
            bottom = float(CHART_HEIGHT)
            for category, amount in sorted(amounts.items()):
                height = float(amount / peak) * CHART_HEIGHT
                bottom -= height
                bars.append(
                    Bar(
                        x=round((day - since).days * slot + slot * 0.1, 2), y=round(bottom, 2),
                        width=round(slot * 0.8, 2), height=round(height, 2),
                        colour=CATEGORY_COLOURS.get(category, "#9ca3af"),
                        label=f"{day:%Y-%m-%d} {category}: {amount:.4f} {currency}",
                    )
                )  # fmt: skip
        labels = dict(RateCard.Category.choices)
        categories = [
            (labels.get(category, category), CATEGORY_COLOURS.get(category, "#9ca3af"))
            for category in sorted({row.category for row in mine})
        ]
        charts.append(Chart(currency=currency, bars=bars, peak=peak, categories=categories))
    return charts


@login_required
def message_media(request, pk: int):
    """GET: the file a customer sent with a message, to a viewer who sees the message (404 for anyone
    else, and while it is not stored). Images, audio and video a browser plays safely are served
    inline; anything else only as a download, never rendered on this site."""
    viewer = viewer_of(request)
    message = get_object_or_404(
        viewer.messages().select_related("contact"), pk=pk, media_status=Message.MediaStatus.STORED
    )
    is_inline = message.media_shown_as != "download"
    extension = message.media.name.rsplit(".", 1)[-1] if "." in message.media.name else "bin"
    filename = viewer.text(message.media_filename, country=message.contact.country)
    response = FileResponse(
        message.media.open("rb"),
        as_attachment=not is_inline,
        filename=filename or f"whatsapp-{message.message_type}-{message.pk}.{extension}",
        content_type=message.mime_type.split(";")[0].strip() if is_inline else "application/octet-stream",
    )
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response
