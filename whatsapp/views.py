from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.access import may_see_number_onboarding, may_set_calling_settings
from whatsapp.forms import CallingSettingsForm
from whatsapp.intake import delivery_answer
from whatsapp.models import BusinessNumber
from whatsapp.onboarding import calling_settings_set, number_onboarding_check


@csrf_exempt
@require_http_methods(["GET", "POST"])
async def webhook(request):
    """Meta's webhook endpoint: the GET verification handshake and signed POST deliveries.

    Deliveries arriving at the same time are received in one transaction (whatsapp.intake). In
    production the web server's POSTs take a shorter way to the same answer (whatsapp.asgi).
    """
    if request.method == "GET":
        return _verify(request)
    status, answer = await delivery_answer(
        body=request.body, signature=request.headers.get("X-Hub-Signature-256")
    )
    return JsonResponse(answer, status=status)


def _verify(request):
    mode = request.GET.get("hub.mode")
    token = request.GET.get("hub.verify_token", "")
    challenge = request.GET.get("hub.challenge", "")
    expected = settings.WHATSAPP_VERIFY_TOKEN
    if mode == "subscribe" and expected and constant_time_compare(token, expected) and challenge.isdigit():
        return HttpResponse(challenge, content_type="text/plain")
    return HttpResponse("verification failed", status=403, content_type="text/plain")


@staff_member_required
@require_http_methods(["GET", "POST"])
def number_onboarding(request, pk: int):
    """What stands between a business number and calling, read live from Meta; administrators set
    its calling settings here (POST), and see Meta's answer."""
    if not may_see_number_onboarding(request.user):
        raise PermissionDenied
    number = get_object_or_404(BusinessNumber, pk=pk)
    may_change = may_set_calling_settings(request.user)
    form, change, status = None, None, 200
    if request.method == "POST":
        if not may_change:
            raise PermissionDenied
        form = CallingSettingsForm(request.POST)
        if not form.is_valid():
            status = 400
        else:
            change = calling_settings_set(
                business_number=number, calling=form.calling(), changed_by_id=request.user.pk
            )
            if change.is_accepted:
                return redirect(f"{reverse('whatsapp:onboarding', args=[number.pk])}?change={change.pk}")
    onboarding = number_onboarding_check(business_number=number)
    if form is None:
        form = CallingSettingsForm.for_settings(onboarding.calling)
    shown = request.GET.get("change", "")
    if change is None and shown.isdigit():
        change = number.calling_settings_changes.filter(pk=int(shown)).first()
    context = {
        "number": number,
        "onboarding": onboarding,
        "form": form,
        "may_change": may_change,
        "change": change,
        "changes": number.calling_settings_changes.select_related("changed_by")[:20],
    }
    return render(request, "whatsapp/onboarding.html", context, status=status)
