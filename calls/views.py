import csv
import uuid
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from agents.models import Queue
from agents.selectors import agent_for_user, numbers_for_agent
from calls import kpis
from calls.selectors import calls_of_contact, contacts_matching, wallboard_snapshot
from compliance.decisions import call_decide
from core.access import viewer_of
from messaging.models import Template
from messaging.reports import MAX_REPORT_DAYS
from messaging.selectors import marketing_of_contact, send_options, templates_sendable, thread_of
from messaging.services import message_send_template, message_send_text
from whatsapp.models import BusinessNumber


@staff_member_required
def wallboard(request):
    return render(request, "calls/wallboard.html", {"snapshot": wallboard_snapshot(with_charts=True)})


@login_required
def contacts(request):
    """Find one of the viewer's customers by name or number."""
    text = request.GET.get("q", "")[:64]
    found = contacts_matching(viewer=viewer_of(request), text=text)
    return render(request, "calls/contacts.html", {"contacts": found, "q": text})


@login_required
def contact(request, pk: int):
    """One of the viewer's customers (404 for another number's): whether each of the agent's numbers
    may call them now (and why not), a Call button that opens the dashboard's dialer, the threads
    and their latest calls on the viewer's numbers, whether the customer takes marketing messages from
    each (and every change of it), as the viewer may read them (core.access)."""
    viewer = viewer_of(request)
    customer = get_object_or_404(viewer.contacts(), pk=pk)
    numbers = _numbers_of(request.user)
    decisions = [(number, call_decide(business_number=number, contact=customer)) for number in numbers]
    marketing = marketing_of_contact(viewer=viewer, contact_id=customer.pk)
    threads = [
        {
            "number": number,
            "marketing": marketing.by_number.get(number.pk),
            "options": send_options(business_number=number, contact=customer),
            "messages": thread_of(contact_id=customer.pk, business_number_id=number.pk),
            "templates": templates_sendable(waba_id=number.waba_id),
            "idempotency_key": uuid.uuid4().hex,  # the form sends once, however often it is submitted
        }
        for number in numbers
    ]
    calls = [
        (call, viewer.notes_of(call), viewer.may_see_call(call))
        for call in calls_of_contact(contact_id=customer.pk, viewer=viewer)
    ]
    return render(
        request,
        "calls/contact.html",
        {"contact": customer, "decisions": decisions, "threads": threads, "calls": calls,
         "marketing_history": marketing.history},
    )  # fmt: skip


class MessageForm(forms.Form):
    number = forms.IntegerField()
    kind = forms.ChoiceField(choices=[("text", "Text"), ("template", "Template")])
    text = forms.CharField(required=False, max_length=4096)
    template = forms.IntegerField(required=False)
    parameters = forms.CharField(
        required=False, max_length=1024, help_text="The template's values, one a line."
    )
    idempotency_key = forms.CharField(max_length=64)


@login_required
@require_POST
def contact_message(request, pk: int):
    """Send the customer a text (inside the customer-service window) or an approved template, from one of
    the numbers the user works with; recorded at once, sent by a worker, shown in the thread. Only to
    the viewer's contacts (404 for another number's)."""
    customer = get_object_or_404(viewer_of(request).contacts(), pk=pk)
    form = MessageForm(request.POST)
    number = None
    if form.is_valid():
        number = _numbers_of(request.user).filter(pk=form.cleaned_data["number"]).first()
    if number is None:
        messages.error(request, "Choose one of your numbers and what to send.")
        return redirect("calls:contact", pk=customer.pk)
    data = form.cleaned_data
    try:
        if data["kind"] == "text":
            message_send_text(
                business_number=number, contact=customer, text=data["text"],
                idempotency_key=data["idempotency_key"], sent_by=request.user,
            )  # fmt: skip
        else:
            template = Template.objects.filter(pk=data["template"]).first()
            if template is None:
                raise ValidationError("Choose a template.", code="template")
            message_send_template(
                business_number=number, contact=customer, template=template,
                parameters=[line.strip() for line in data["parameters"].splitlines() if line.strip()],
                idempotency_key=data["idempotency_key"], sent_by=request.user,
            )  # fmt: skip
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Sent: it shows in the thread as Meta reports it.")
    return redirect("calls:contact", pk=customer.pk)


def _numbers_of(user):
    agent = agent_for_user(user=user)
    if agent is not None:
        return numbers_for_agent(agent_id=agent.pk)
    return BusinessNumber.objects.all() if user.is_staff else BusinessNumber.objects.none()


class KpiPeriodForm(forms.Form):
    """The CSV export's query: `since` and `until` (ISO 8601; without an offset, in the site's time
    zone), or one `day` (in the queue's time zone, else the site's); today when neither is given.
    `queue` picks one queue; `by` is `queue` (the default) or `agent`."""

    since = forms.DateTimeField(required=False)
    until = forms.DateTimeField(required=False)
    day = forms.DateField(required=False)
    queue = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    by = forms.ChoiceField(choices=[("queue", "Queue"), ("agent", "Agent")], required=False)

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        queue = None
        if data.get("queue") is not None:
            queue = Queue.objects.filter(pk=data["queue"]).first()
            if queue is None:
                raise forms.ValidationError("No such queue.")
        since, until = data.get("since"), data.get("until")
        if since is None and until is None:
            time_zone = queue.timezone if queue else None
            since, until = kpis.local_day(
                day=data.get("day") or kpis.today_in(time_zone=time_zone), time_zone=time_zone
            )
        elif since is None or until is None or data.get("day"):
            raise forms.ValidationError("Give since and until, or a day.")
        if until <= since or until - since > timedelta(days=MAX_REPORT_DAYS):
            raise forms.ValidationError(
                f"The period must end after it starts, within {MAX_REPORT_DAYS} days."
            )
        return {**data, "since": since, "until": until, "queue": queue, "by": data.get("by") or "queue"}


CSV_UNSAFE_FIRST = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would read such a cell as a formula


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(CSV_UNSAFE_FIRST):
        return f"'{value}"
    return value


@login_required
def kpis_csv(request):
    """The KPIs of a period as CSV, for supervisors (staff, or users with the `calls.view_kpis`
    permission; every queue): one row per queue, a row of calls of no queue, and the total; with
    `by=agent`, one row per agent and a row of all agents (calls.kpis.kpis_table)."""
    if not viewer_of(request).sees_kpis:
        raise PermissionDenied
    form = KpiPeriodForm(request.GET)
    if not form.is_valid():
        problems = [message for messages_ in form.errors.values() for message in messages_]
        return HttpResponseBadRequest(" ".join(problems), content_type="text/plain; charset=utf-8")
    query = form.cleaned_data
    figures = kpis.kpis_of_period(
        since=query["since"], until=query["until"], queue_id=query["queue"].pk if query["queue"] else None
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"kpis-by-{query['by']}-{figures.since:%Y%m%dT%H%M}-{figures.until:%Y%m%dT%H%M}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    for row in kpis.kpis_table(report=figures, by=query["by"]):
        writer.writerow([_csv_cell(cell) for cell in row])
    return response
