from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from compliance.decisions import call_decide
from compliance.services import fallback_send
from messaging.models import Contact
from messaging.services import contact_get_or_create, wa_id_from_text
from whatsapp.models import BusinessNumber


class WhyForm(forms.Form):
    business_number = forms.ModelChoiceField(queryset=BusinessNumber.objects.all(), empty_label=None)
    customer = forms.CharField(
        max_length=32,
        help_text="The customer's WhatsApp number in international format, e.g. +44 7700 900123.",
    )
    action = forms.ChoiceField(
        choices=[("", "Check"), ("permission_request", "Request"), ("call_button", "Button")], required=False
    )

    def clean_customer(self) -> str:
        return wa_id_from_text(self.cleaned_data["customer"].strip())


@staff_member_required
@require_http_methods(["GET", "POST"])
def why(request):
    """Supervisors: may this number call this customer, and if not, why and what to do instead.

    GET checks (nothing changes); POST sends the offered fallback (a permission request or a
    "Call us" button) and comes back to the check.
    """
    form = WhyForm(request.POST if request.method == "POST" else (request.GET or None))
    decision = None
    if form.is_bound and form.is_valid():
        number, wa_id = form.cleaned_data["business_number"], form.cleaned_data["customer"]
        if request.method == "POST":
            return _send_fallback(request, number, wa_id, form.cleaned_data["action"])
        contact = Contact.objects.filter(wa_id=wa_id).first() or Contact(wa_id=wa_id)
        decision = call_decide(business_number=number, contact=contact)
    return render(request, "compliance/why.html", {"form": form, "decision": decision})


def _send_fallback(request, number: BusinessNumber, wa_id: str, action: str):
    contact = contact_get_or_create(wa_id=wa_id)
    try:
        sent = fallback_send(
            kind=action, business_number=number, contact=contact, requested_by_id=request.user.pk
        )
        messages.success(request, sent)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    query = f"?business_number={number.pk}&customer=%2B{wa_id}"
    return redirect(reverse("compliance:why") + query)
