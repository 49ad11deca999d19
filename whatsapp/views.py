from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from whatsapp.intake import delivery_receive
from whatsapp.services import webhook_signature_is_valid


@csrf_exempt
@require_http_methods(["GET", "POST"])
async def webhook(request):
    """Meta's webhook endpoint: the GET verification handshake and signed POST deliveries.

    Deliveries arriving at the same time are received in one transaction (whatsapp.intake).
    """
    if request.method == "GET":
        return _verify(request)
    body = request.body
    signature = request.headers.get("X-Hub-Signature-256")
    if not webhook_signature_is_valid(
        body=body, signature=signature, app_secret=settings.WHATSAPP_APP_SECRET
    ):
        return JsonResponse({"error": "missing or invalid X-Hub-Signature-256"}, status=403)
    outcome = await delivery_receive(body)
    if not outcome.is_accepted:
        return JsonResponse({"error": outcome.error}, status=400)
    return JsonResponse({"received": len(outcome.new_events), "duplicates": outcome.delivery.duplicate_count})


def _verify(request):
    mode = request.GET.get("hub.mode")
    token = request.GET.get("hub.verify_token", "")
    challenge = request.GET.get("hub.challenge", "")
    expected = settings.WHATSAPP_VERIFY_TOKEN
    if mode == "subscribe" and expected and constant_time_compare(token, expected) and challenge.isdigit():
        return HttpResponse(challenge, content_type="text/plain")
    return HttpResponse("verification failed", status=403, content_type="text/plain")
