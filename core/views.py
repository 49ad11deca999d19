from django.contrib.auth.views import LoginView
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found

from core.access import may_read_metrics
from core.forms import SignInForm
from core.selectors import system_health


@never_cache
@require_GET
def healthz(request):
    """Health for load balancers and humans: 200 when every part works, 503 otherwise."""
    health = system_health()
    return JsonResponse(health, status=200 if health["status"] == "ok" else 503)


@never_cache
@require_GET
def metrics(request):
    """What an operator watches (core.metrics), for a Prometheus scrape that sends the metrics
    token; 403 for everyone else, signed-in staff included (the figures name queues and agents'
    numbers, and a token can be given to a monitoring system alone)."""
    if not may_read_metrics(authorization=request.headers.get("Authorization", "")):
        return JsonResponse({"error": "a metrics token is needed (Authorization: Bearer …)"}, status=403)
    from prometheus_client import CONTENT_TYPE_LATEST

    from core.metrics import metrics_text

    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)


def not_found(request, exception):
    """404: JSON under /api/ (what a client of the API parses), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


class SignInView(LoginView):
    """/login/: a password sign-in under the sign-in throttle; a locked-out one is a 429 that says
    for how long."""

    authentication_form = SignInForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.is_locked_out:
            response.status_code = 429
        return response
