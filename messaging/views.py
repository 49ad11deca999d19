"""The costs page: what the account spends on messages and calls, and what customers' calls save; the
files customers sent, to those who see their messages; the shared inbox."""

import datetime
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError as InvalidPeriod

from agents.models import Agent, Queue
from agents.selectors import agent_day, agent_for_user, numbers_for_agent
from calls.selectors import calls_of_contact, customer_cost
from campaigns.selectors import campaign_cost_rows
from compliance.decisions import call_decide
from compliance.services import fallback_send
from core.access import viewer_of
from core.webrtc import browser_ice_servers
from messaging.conversations import (
    conversation_claim,
    conversation_close,
    conversation_mark_read,
    conversation_transfer,
)
from messaging.inbox import (
    NOTE_MAX_LENGTH,
    conversation_note_add,
    customer_read_receipt_send,
    customer_typing_show,
)
from messaging.models import Conversation, Message, RateCard, Template
from messaging.reports import report_period
from messaging.selectors import (
    SpendRow,
    call_cost_totals,
    call_costs_by_day,
    canned_replies_for,
    conversations_all,
    conversations_mine,
    conversations_search,
    conversations_waiting,
    inbox_counts,
    send_options,
    spend_by_day,
    spend_totals,
    templates_sendable,
    thread_with_notes,
    unpriced_groups,
)
from messaging.services import message_send_template, message_send_text

CHART_WIDTH, CHART_HEIGHT = 720, 180
COST_PERMISSION = "messaging.view_charge"  # the costs page, and what a customer has cost
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
@permission_required(COST_PERMISSION, raise_exception=True)
def costs(request):
    """GET ?since=&until= (UTC days, the last 30 by default): spend by day as a chart per currency,
    the ledger's rows, what no rate priced and why, and connected calls with the saving of letting
    customers call in."""
    try:
        since, until = report_period(request.GET)
        error = None
    except InvalidPeriod as invalid:
        since = until = None
        error = "; ".join(str(message) for messages in invalid.detail.values() for message in messages)
    context = {"since": since, "until": until, "error": error}
    if error is None:
        rows = spend_by_day(since=since, until=until)
        call_rows = call_costs_by_day(since=since, until=until)
        context |= {
            "rows": rows,
            "totals": spend_totals(rows),
            "unpriced": unpriced_groups(rows),
            "charts": spend_charts(rows, since=since, until=until),
            "call_rows": call_rows,
            "call_totals": call_cost_totals(call_rows),
            "campaign_rows": campaign_cost_rows(since=since, until=until),
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


# --- The shared inbox: the agent's conversations, one open with its customer ----------------------

INBOX_TABS = ("mine", "waiting", "all")


def _inbox_tab(request) -> str:
    tab = request.GET.get("tab", "mine")
    if tab not in INBOX_TABS or (tab == "all" and not request.user.is_staff):
        return "mine"
    return tab


def _inbox_list(request, *, tab: str) -> list[Conversation]:
    viewer = viewer_of(request)
    if tab == "waiting":
        return conversations_waiting(viewer=viewer)
    if tab == "all":
        return conversations_all(viewer=viewer)
    return conversations_mine(viewer=viewer)


def _list_context(request, *, open_id: int | None = None) -> dict:
    tab = _inbox_tab(request)
    query = request.GET.get("q", "").strip()
    return {
        "tab": tab,
        "tabs": [name for name in INBOX_TABS if name != "all" or request.user.is_staff],
        "query": query,
        "conversations": conversations_search(viewer=viewer_of(request), term=query)
        if query
        else _inbox_list(request, tab=tab),
        "counts": inbox_counts(viewer=viewer_of(request)),
        "open_id": open_id,
        "is_agent": viewer_of(request).agent_id is not None,
    }


def _dock_context(request) -> dict:
    """For an agent, the softphone docked beside the inbox (its socket carries the inbox's events too)
    and the agent's own day; a viewer who takes no calls (a supervisor) gets neither."""
    agent = agent_for_user(user=request.user)
    if agent is None:
        return {"agent": None}
    return {
        "agent": agent,
        "numbers": list(numbers_for_agent(agent_id=agent.pk)),
        "ice_servers": browser_ice_servers(),
        "my_day": agent_day(agent_id=agent.pk),
    }


@login_required
def inbox(request):
    """GET ?tab=mine|waiting|all (all: supervisors): the viewer's conversations, with unread counts;
    with ?q= those of the viewer's numbers found by the customer's name, number or (when the viewer
    may search free text for it) what was written."""
    return render(request, "messaging/inbox.html", _list_context(request) | _dock_context(request))


@login_required
def inbox_list(request):
    """GET ?tab=&q=&open=: the list alone, as the inbox page shows it (the page's script refreshes it)."""
    open_id = request.GET.get("open", "")
    context = _list_context(request, open_id=int(open_id) if open_id.isdigit() else None)
    return render(request, "messaging/_inbox_list.html", context)


def _conversation_of(request, pk: int) -> Conversation:
    """One of the viewer's conversations (404 for a number the viewer does not serve)."""
    return get_object_or_404(
        viewer_of(request)
        .conversations()
        .select_related("contact", "business_number", "queue", "agent__user", "lead"),
        pk=pk,
    )


def _is_holder(request, conversation: Conversation) -> bool:
    agent_id = viewer_of(request).agent_id
    return agent_id is not None and conversation.agent_id == agent_id


def _may_reply(request, conversation: Conversation) -> bool:
    is_open = conversation.state != Conversation.State.CLOSED
    return is_open and (_is_holder(request, conversation) or request.user.is_staff)


def _thread_context(request, conversation: Conversation) -> dict:
    viewer = viewer_of(request)
    return {
        "conversation": conversation,
        "thread": thread_with_notes(conversation=conversation, viewer=viewer),
        "is_holder": _is_holder(request, conversation),
        "may_note": viewer.agent_id is not None or request.user.is_staff,
        "may_reply": _may_reply(request, conversation),
    }


@login_required
def conversation(request, pk: int):
    """GET: the inbox with one conversation open: its thread and the reply form (text inside the
    customer-service window, an approved template outside it, with what each costs now), what the
    viewer may do with it, and the customer: whether the number may call them, their latest calls with
    their summaries as the viewer may read them (core.access)."""
    viewer = viewer_of(request)
    conversation = _conversation_of(request, pk)
    number, customer = conversation.business_number, conversation.contact
    calls = [
        {
            "call": call,
            "notes": viewer.notes_of(call),
            "may_open": viewer.may_see_call(call),
            "summary": viewer.text(call.summary.paragraph, country=customer.country)
            if viewer.may_see_call(call) and hasattr(call, "summary")
            else "",
        }
        for call in calls_of_contact(contact_id=customer.pk, viewer=viewer).select_related("summary")
    ]
    context = _list_context(request, open_id=conversation.pk) | _thread_context(request, conversation)
    context |= {
        "options": send_options(business_number=number, contact=customer),
        "templates": templates_sendable(waba_id=number.waba_id),
        "idempotency_key": uuid.uuid4().hex,  # the form sends once, however often it is submitted
        "decision": call_decide(business_number=number, contact=customer),
        "calls": calls,
        "agents": Agent.objects.filter(memberships__queue__business_numbers=number)
        .exclude(pk=conversation.agent_id)
        .select_related("user")
        .distinct()
        .order_by("display_name", "pk"),
        "queues": Queue.objects.filter(business_numbers=number).order_by("name"),
        "canned_replies": canned_replies_for(business_number_id=number.pk),
        "lead": _lead_shown(conversation, viewer=viewer),
        # What the customer has cost, to those who see the costs page (COST_PERMISSION).
        "cost": customer_cost(contact_id=customer.pk, business_number_id=number.pk)
        if request.user.has_perm(COST_PERMISSION)
        else None,
    }
    context |= _dock_context(request)
    return render(request, "messaging/conversation.html", context)


def _lead_shown(conversation: Conversation, *, viewer) -> dict | None:
    """What the assistant learnt of the customer, as the viewer may read it (what the customer said
    and the summary of it are free text: core.access)."""
    from assistant.models import Lead, LeadField

    try:
        lead = conversation.lead
    except Lead.DoesNotExist:
        return None
    country = conversation.contact.country
    labels = dict(LeadField.choices)
    return {
        "score": lead.score,
        "sentiment": lead.get_sentiment_display(),
        "intent": viewer.text(lead.intent, country=country),
        "summary": viewer.text(lead.summary, country=country),
        "fields": [
            (labels.get(name, name), viewer.text(str(answer), country=country))
            for name, answer in (lead.fields or {}).items()
        ],
    }


@login_required
def conversation_thread(request, pk: int):
    """GET: the open conversation's thread alone (the page's script refreshes it; the dashboard
    shows it beside the call it led to, to the agent on that call: core.access)."""
    conversation = get_object_or_404(
        viewer_of(request).conversation_threads().select_related("contact", "business_number"), pk=pk
    )
    return render(request, "messaging/_thread.html", _thread_context(request, conversation))


TAKEN = "Someone else took this conversation, or it changed meanwhile."


def _done(request, conversation: Conversation, outcome, *, success: str, lost: str = TAKEN):
    if outcome:
        messages.success(request, success)
    else:
        messages.error(request, lost)
    return redirect("messaging:conversation", pk=conversation.pk)


@login_required
@require_POST
def conversation_claim_view(request, pk: int):
    """POST: the agent takes a waiting conversation; a lost race says someone else took it."""
    conversation = _conversation_of(request, pk)
    agent_id = viewer_of(request).agent_id
    if agent_id is None:
        messages.error(request, "Only agents take conversations.")
        return redirect("messaging:conversation", pk=conversation.pk)
    try:
        claimed = conversation_claim(conversation_id=conversation.pk, agent_id=agent_id)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("messaging:conversation", pk=conversation.pk)
    return _done(request, conversation, claimed, success="It is yours.")


@login_required
@require_POST
def conversation_close_view(request, pk: int):
    """POST: close the conversation: an agent their own, a supervisor anyone's (as the page showed it)."""
    conversation = _conversation_of(request, pk)
    agent_id = conversation.agent_id if request.user.is_staff else viewer_of(request).agent_id
    closed = conversation_close(conversation_id=conversation.pk, agent_id=agent_id)
    if closed is None:
        messages.error(request, "Not yours to close, or it changed meanwhile.")
        return redirect("messaging:conversation", pk=conversation.pk)
    messages.success(request, "Closed: the customer's next message opens a new conversation.")
    return redirect("messaging:inbox")


class TransferForm(forms.Form):
    to = forms.RegexField(regex=r"^(agent|queue):[0-9]{1,18}$", error_messages={"invalid": "Choose where."})


@login_required
@require_POST
def conversation_transfer_view(request, pk: int):
    """POST to=agent:<id>|queue:<id>: hand the conversation on. An agent hands on their own or a
    waiting one; a supervisor anyone's, as the page showed it."""
    conversation = _conversation_of(request, pk)
    form = TransferForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an agent or a queue to transfer to.")
        return redirect("messaging:conversation", pk=conversation.pk)
    kind, target = form.cleaned_data["to"].split(":")
    if request.user.is_staff or conversation.state == Conversation.State.WAITING:
        from_agent_id = conversation.agent_id
    else:
        from_agent_id = viewer_of(request).agent_id
    try:
        moved = conversation_transfer(
            conversation_id=conversation.pk, from_agent_id=from_agent_id,
            to_agent_id=int(target) if kind == "agent" else None,
            to_queue_id=int(target) if kind == "queue" else None,
        )  # fmt: skip
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("messaging:conversation", pk=conversation.pk)
    return _done(
        request,
        conversation,
        moved,
        success="Transferred.",
        lost="Not yours to transfer, or it changed meanwhile.",
    )


@login_required
@require_POST
def conversation_read_view(request, pk: int):
    """POST: the agent who has the conversation read it."""
    conversation = _conversation_of(request, pk)
    agent_id = viewer_of(request).agent_id
    if agent_id is not None and conversation_mark_read(conversation_id=conversation.pk, agent_id=agent_id):
        customer_read_receipt_send(conversation=conversation)  # blue ticks on the customer's phone
    return redirect("messaging:conversation", pk=conversation.pk)


@login_required
@require_POST
def conversation_typing_view(request, pk: int):
    """POST: the agent who may reply is typing: the customer sees "typing…" (throttled, sent by a
    worker; nothing the agent need wait for or hear of). 204, or 403 for anyone who may not reply."""
    conversation = _conversation_of(request, pk)
    if not _may_reply(request, conversation):
        return HttpResponse(status=403)
    customer_typing_show(conversation=conversation)
    return HttpResponse(status=204)


class NoteForm(forms.Form):
    text = forms.CharField(max_length=NOTE_MAX_LENGTH)


@login_required
@require_POST
def conversation_note_view(request, pk: int):
    """POST text=: an agent of the number or a supervisor leaves a private note on the conversation,
    never sent to the customer; shown in the thread to whom the notes rule allows (core.access).
    The page's script posts it without leaving the page (the reply being written stays): 204, or 400
    with the reason; without the script, back to the conversation with a notice."""
    conversation = _conversation_of(request, pk)
    viewer = viewer_of(request)
    form = NoteForm(request.POST)
    error = ""
    if viewer.agent_id is None and not request.user.is_staff:
        error = "Only agents and supervisors leave notes."
    elif not form.is_valid():
        error = f"Write the note (at most {NOTE_MAX_LENGTH} characters)."
    else:
        try:
            conversation_note_add(
                conversation=conversation, author=request.user, author_agent_id=viewer.agent_id,
                text=form.cleaned_data["text"],
            )  # fmt: skip
        except ValidationError as invalid:
            error = " ".join(invalid.messages)
    if request.headers.get("X-Requested-With") == "fetch":
        if error:
            return HttpResponse(error, status=400, content_type="text/plain")
        return HttpResponse(status=204)
    if error:
        messages.error(request, error)
    return redirect("messaging:conversation", pk=conversation.pk)


class ReplyForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("text", "Text"), ("template", "Template"), ("call_button", "Call us button")]
    )
    text = forms.CharField(required=False, max_length=4096)
    template = forms.IntegerField(required=False)
    parameters = forms.CharField(required=False, max_length=1024)
    idempotency_key = forms.CharField(max_length=64)


@login_required
@require_POST
def conversation_reply(request, pk: int):
    """POST: the agent who has the conversation (or a supervisor) sends the customer a text inside the
    customer-service window, or an approved template of the number's account (recorded at once, sent
    by a worker: messaging.services), or the "Call us" button (sent at once, with the configured
    template outside the window: compliance.services); each shows in the thread."""
    conversation = _conversation_of(request, pk)
    if not _may_reply(request, conversation):
        messages.error(request, "Take the conversation before replying.")
        return redirect("messaging:conversation", pk=conversation.pk)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Write a text or choose a template.")
        return redirect("messaging:conversation", pk=conversation.pk)
    data, number = form.cleaned_data, conversation.business_number
    try:
        if data["kind"] == "call_button":  # sent now, in or outside the window (compliance.services)
            messages.success(
                request,
                fallback_send(
                    kind="call_button", business_number=number, contact=conversation.contact,
                    requested_by_id=request.user.pk,
                ),
            )  # fmt: skip
        elif data["kind"] == "text":
            message_send_text(
                business_number=number, contact=conversation.contact, text=data["text"],
                idempotency_key=data["idempotency_key"], sent_by=request.user,
            )  # fmt: skip
        else:
            template = Template.objects.filter(pk=data["template"], waba_id=number.waba_id).first()
            if template is None:
                raise ValidationError("Choose a template.", code="template")
            message_send_template(
                business_number=number, contact=conversation.contact, template=template,
                parameters=[line.strip() for line in data["parameters"].splitlines() if line.strip()],
                idempotency_key=data["idempotency_key"], sent_by=request.user,
            )  # fmt: skip
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("messaging:conversation", pk=conversation.pk)
