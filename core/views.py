from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.selectors import system_health


@never_cache
@require_GET
def healthz(request):
    """Health for load balancers and humans: 200 when every part works, 503 otherwise."""
    health = system_health()
    return JsonResponse(health, status=200 if health["status"] == "ok" else 503)
