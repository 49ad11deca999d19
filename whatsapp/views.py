from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from whatsapp.intake import delivery_answer


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
