from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from calls.selectors import contacts_with_text
from campaigns import services
from campaigns.costs import campaign_cost_estimate
from campaigns.forms import CampaignForm, StartForm
from campaigns.models import Campaign, OptIn, Recipient
from campaigns.planning import campaign_plan
from campaigns.selectors import campaign_cost, campaign_exclusions, campaign_progress
from core.access import Viewer, viewer_of

DONE = {"start": "started", "pause": "paused", "resume": "resumed", "cancel": "cancelled"}
EXCLUDED_SHOWN = 50  # the first excluded lines listed on the page; the API and admin have them all


def _runner(request) -> Viewer:
    viewer = viewer_of(request)
    if not viewer.runs_campaigns:
        raise PermissionDenied
    return viewer


@login_required
def campaign_list(request):
    """The campaigns of the viewer's numbers (supervisors), newest first."""
    viewer = _runner(request)
    campaigns = viewer.campaigns().select_related("business_number", "template")[:200]
    return render(request, "campaigns/list.html", {"campaigns": campaigns})


@login_required
@require_http_methods(["GET", "POST"])
def campaign_new(request):
    """GET the form; POST screens the list into a draft campaign (nothing is sent yet) and shows it."""
    viewer = _runner(request)
    form = CampaignForm(request.POST or None, request.FILES or None, number_ids=viewer.number_ids)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            lines = _lines(viewer, data)
            with transaction.atomic():
                if data["opted_in"]:
                    services.opt_ins_record(
                        business_number=data["business_number"], lines=lines, at=timezone.now(),
                        source=OptIn.Source.IMPORT, detail=data["opt_in_detail"], recorded_by=request.user,
                    )  # fmt: skip
                campaign = services.campaign_create(
                    name=data["name"], business_number=data["business_number"], template=data["template"],
                    lines=lines, created_by=request.user, **form.guesses(),
                )  # fmt: skip
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return redirect("campaigns:detail", pk=campaign.pk)
    return render(request, "campaigns/new.html", {"form": form}, status=400 if form.errors else 200)


def _lines(viewer: Viewer, data: dict) -> list[str]:
    lines = []
    if data["csv_file"]:
        lines += services.lines_from_csv(data["csv_file"].read())
    lines += (data["numbers"] or "").splitlines()
    if data["contacts_filter"]:
        text = "" if data["contacts_filter"].strip() == "*" else data["contacts_filter"].strip()
        lines += [
            f"+{wa_id}"
            for wa_id in contacts_with_text(viewer=viewer, text=text).values_list("wa_id", flat=True)
        ]
    return lines


@login_required
def campaign_detail(request, pk: int):
    """A campaign: before sending, who is left out and why, what it will cost and the capacity plan
    (the send rate that keeps the number's call cap and the queue's service level); once sending,
    its live progress, its cost and what it brought."""
    viewer = _runner(request)
    campaign = get_object_or_404(viewer.campaigns().select_related("business_number", "template"), pk=pk)
    is_draft = campaign.status == Campaign.Status.DRAFT
    plan = (
        campaign_plan(campaign)
        if campaign.status in (Campaign.Status.DRAFT, Campaign.Status.PAUSED)
        else None
    )
    context = {
        "campaign": campaign,
        "exclusions": [
            (label, count)
            for (reason, label) in Recipient.Exclusion.choices
            if (count := campaign_exclusions(campaign).get(reason))
        ],
        # As listed, which may be any text typed into a list: masked as the viewer reads free text.
        "excluded": [
            (viewer.text(recipient.listed_as), recipient.exclusion_detail)
            for recipient in campaign.recipients.filter(status=Recipient.Status.EXCLUDED)[:EXCLUDED_SHOWN]
        ],
        "estimate": campaign_cost_estimate(campaign) if is_draft else None,
        "plan": plan,
        "start_form": StartForm(
            initial={"send_rate": round(plan.recommended_send_rate, 3) if plan and plan.is_feasible else None}
        ),
        "progress": campaign_progress(campaign),
        "cost": campaign_cost(campaign),
    }
    return render(request, "campaigns/detail.html", context)


@login_required
def campaign_progress_part(request, pk: int):
    """The progress part of the page, for its live refresh."""
    viewer = _runner(request)
    campaign = get_object_or_404(viewer.campaigns(), pk=pk)
    context = {"campaign": campaign, "progress": campaign_progress(campaign), "cost": campaign_cost(campaign)}
    return render(request, "campaigns/_progress.html", context)


@login_required
@require_POST
def campaign_action(request, pk: int, action: str):
    """Start (at the plan's rate, or the one given), pause, resume or cancel; back to the page with
    what happened or why not."""
    viewer = _runner(request)
    campaign = get_object_or_404(viewer.campaigns(), pk=pk)
    try:
        if action == "start":
            form = StartForm(request.POST)
            if not form.is_valid():
                raise ValidationError(
                    " ".join(str(error) for errors in form.errors.values() for error in errors)
                )
            services.campaign_start(campaign_id=campaign.pk, send_rate=form.cleaned_data["send_rate"])
        elif action in DONE:
            services.ACTIONS[action](campaign_id=campaign.pk)
        else:
            raise ValidationError(f"'{action}' is not something a campaign does.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Campaign {DONE[action]}.")
    return redirect("campaigns:detail", pk=campaign.pk)
