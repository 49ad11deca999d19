"""API keys: made (shown once), checked on every request, revoked."""

import hashlib
import hmac
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from core.realtime import broadcast_on_commit
from integrations.models import ApiKey

TOKEN_PREFIX = "sbk_"
LAST_USED_EVERY = timedelta(minutes=1)  # last use is written at most this often per key


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *, name: str, scopes: list[str], business_number_ids: list[int], created_by_id: int | None,
    rate_limit_per_minute: int = 120, allowed_origins: list[str] | None = None,
) -> tuple[ApiKey, str]:  # fmt: skip
    """A new key: the row, and the key itself (`sbk_<prefix>_<secret>`), which is never stored."""
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {ApiKey.Scope.values}, not {sorted(unknown) or scopes}")
    origins = [origin_normalise(origin) for origin in allowed_origins or []]
    if None in origins:
        raise ValueError(f"allowed_origins must be web origins (scheme://host[:port]), not {allowed_origins}")
    key = ApiKey(
        name=name, scopes=sorted(set(scopes)), rate_limit_per_minute=rate_limit_per_minute,
        created_by_id=created_by_id, allowed_origins=sorted(set(origins)),
    )  # fmt: skip
    token = api_key_seal(key)
    key.save()
    key.business_numbers.set(business_number_ids)
    return key, token


def api_key_seal(key: ApiKey) -> str:
    """Give an unsaved key its secret: sets its prefix and hash, returns the key itself (to show once)."""
    key.prefix = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}{key.prefix}_{secrets.token_urlsafe(32)}"
    key.secret_hash = _hash(token)
    return token


def api_key_revoke(*, key_id: int) -> bool:
    """Revoke a key at once: its next request fails, and once the revocation commits every call
    widget socket opened with it is closed (`api_key.revoked` to the key's group). Returns whether
    it was active."""
    is_revoked = bool(
        ApiKey.objects.filter(pk=key_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
    )
    if is_revoked:
        broadcast_on_commit(ApiKey(pk=key_id).group_name, {"type": "api_key.revoked", "key_id": key_id})
    return is_revoked


def api_key_authenticate(*, token: str) -> ApiKey | None:
    """The active key `token` is, or None. Notes its use (at most once a minute)."""
    if not token.startswith(TOKEN_PREFIX) or token.count("_") < 2:
        return None
    prefix = token[len(TOKEN_PREFIX) :].split("_", 1)[0]
    key = ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).first()
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(token)):
        return None
    now = timezone.now()
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_EVERY:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def origin_normalise(text: str) -> str | None:
    """`text` as a web origin (lower-case scheme://host[:port], default ports left out), or None when
    it is not one (a path, query, credentials or another scheme than http(s))."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")
