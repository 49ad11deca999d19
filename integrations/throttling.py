from django.core.cache import caches
from rest_framework.throttling import SimpleRateThrottle

from integrations.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Each API key's own rate (its `rate_limit_per_minute`), counted in Redis so that every web
    worker counts the same requests; beyond it, 429 with Retry-After. Sessions are not limited."""

    scope = "api_key"

    def __init__(self) -> None:  # the rate is the key's, known per request
        self.cache = caches["api"]

    def allow_request(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            return True
        self.rate = f"{request.auth.rate_limit_per_minute}/min"
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        return f"throttle:api-key:{request.auth.pk}"
