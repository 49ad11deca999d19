from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from agents.selectors import agent_for_user, numbers_for_agent
from calls.selectors import calls_of_contact, contacts_matching, wallboard_snapshot
from compliance.decisions import call_decide
from messaging.models import Contact
from whatsapp.models import BusinessNumber


@staff_member_required
def wallboard(request):
    return render(request, "calls/wallboard.html", {"snapshot": wallboard_snapshot()})


@login_required
def contacts(request):
    """Find a customer by name or number."""
    text = request.GET.get("q", "")[:64]
    return render(request, "calls/contacts.html", {"contacts": contacts_matching(text=text), "q": text})


@login_required
def contact(request, pk: int):
    """One customer: whether each of the agent's numbers may call them now (and why not), a Call
    button that opens the dashboard's dialer, and their latest calls."""
    customer = get_object_or_404(Contact, pk=pk)
    agent = agent_for_user(user=request.user)
    numbers = numbers_for_agent(agent_id=agent.pk) if agent else BusinessNumber.objects.none()
    if agent is None and request.user.is_staff:
        numbers = BusinessNumber.objects.all()
    decisions = [(number, call_decide(business_number=number, contact=customer)) for number in numbers]
    return render(
        request,
        "calls/contact.html",
        {"contact": customer, "decisions": decisions, "calls": calls_of_contact(contact_id=customer.pk)},
    )
