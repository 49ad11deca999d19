"""Password sign-ins, throttled: the sign-in page (/login/), admin's (/admin/login/) and the call
widget's all go through `sign_in_authenticate`, one throttle for the three.

Failed sign-ins are counted per account (the username, whatever its case) and per client address,
in Redis, so that every web worker counts the same tries. An account that fails
SIGN_IN_FAILURES_PER_ACCOUNT times, or an address that fails SIGN_IN_FAILURES_PER_ADDRESS times,
within SIGN_IN_LOCKOUT_MINUTES is locked out for SIGN_IN_LOCKOUT_MINUTES: no password is checked
then, the right one included. Each try takes its place in the counts before its password is
checked (tries sent at once cannot all slip in before the first failure is counted); a good
sign-in gives its place back, so good sign-ins never add up to a lockout. Each lockout is logged
and kept as a `SignInLockout` row (admin: *Sign-in lockouts*, read-only).
"""

import contextlib
import hashlib
import ipaddress
import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from time import time as now_s

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.core.cache import caches
from django.utils import timezone

from core.models import SignInLockout

logger = logging.getLogger(__name__)


class SignInLocked(Exception):
    """Too many failed sign-ins: the message says for how long more (shown to the person)."""

    def __init__(self, *, seconds: float) -> None:
        self.minutes = max(1, math.ceil(seconds / 60))
        unit = "minute" if self.minutes == 1 else "minutes"
        super().__init__(f"Too many failed sign-ins; try again in {self.minutes} {unit}.")


@dataclass(frozen=True)
class _Count:
    kind: str  # SignInLockout.Kind
    failures: str  # the cache key of its failures
    lock: str  # the cache key of its lockout (holding when it ends)
    limit: int


def client_address(request) -> str | None:
    """The client's address as the web server saw it (uvicorn resolves trusted proxies' headers)."""
    try:
        return str(ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))) if request is not None else None
    except ValueError:
        return None


def _counts(*, username: str, address: str | None) -> list[_Count]:
    account = hashlib.sha256(username.casefold().encode()).hexdigest()[:32]
    counts = [
        _Count(
            kind=SignInLockout.Kind.ACCOUNT,
            failures=f"sign-in:failures:account:{account}",
            lock=f"sign-in:lock:account:{account}",
            limit=settings.SIGN_IN_FAILURES_PER_ACCOUNT,
        )
    ]
    if address:
        counts.append(
            _Count(
                kind=SignInLockout.Kind.ADDRESS,
                failures=f"sign-in:failures:address:{address}",
                lock=f"sign-in:lock:address:{address}",
                limit=settings.SIGN_IN_FAILURES_PER_ADDRESS,
            )
        )
    return counts


def sign_in_authenticate(*, request, username: str, password: str, where: str):
    """The user `username` and `password` name (Django's `authenticate`), or None; SignInLocked,
    with no password checked, while the account or the client's address is locked out.

    A failure counts against both; the one that reaches a limit locks it out (logged, and a
    `SignInLockout` row written)."""
    cache = caches["api"]
    address = client_address(request)
    counts = _counts(username=username, address=address)
    now = now_s()
    locked_until = max((until for until in cache.get_many([c.lock for c in counts]).values()), default=0)
    if locked_until > now:
        raise SignInLocked(seconds=locked_until - now)
    window_s = settings.SIGN_IN_LOCKOUT_MINUTES * 60
    failures = {}
    for count in counts:  # this try takes its place first
        cache.add(count.failures, 0, timeout=window_s)
        failures[count] = cache.incr(count.failures)
    beyond = [count for count in counts if failures[count] > count.limit]
    if beyond:  # tries sent together past the limit: not checked at all
        until = _lock_out(beyond, username=username, address=address, where=where, failures=failures)
        raise SignInLocked(seconds=until - now)
    user = authenticate(request, username=username, password=password)
    if user is not None:
        for count in counts:  # a good sign-in gives its place back
            with contextlib.suppress(ValueError):  # the window ended meanwhile
                cache.decr(count.failures)
        return user
    reached = [count for count in counts if failures[count] >= count.limit]
    if reached:
        _lock_out(reached, username=username, address=address, where=where, failures=failures)
    return None


def _lock_out(
    counts: list[_Count], *, username: str, address: str | None, where: str, failures: dict
) -> float:
    """Locks out what `counts` name (those not locked already: logged and recorded once); when the
    lockout ends."""
    cache = caches["api"]
    lockout_s = settings.SIGN_IN_LOCKOUT_MINUTES * 60
    until = now_s() + lockout_s
    user = get_user_model().objects.filter(username=username).first()
    for count in counts:
        if not cache.add(count.lock, until, timeout=lockout_s):
            until = max(until, cache.get(count.lock) or 0)
            continue
        cache.delete(count.failures)  # after the lockout, a fresh count
        SignInLockout.objects.create(
            kind=count.kind,
            where=where,
            username=username[:150],
            user=user,
            address=address,
            failures=failures[count],
            until=timezone.now() + timedelta(seconds=lockout_s),
        )
        logger.warning(
            "sign-in lockout: %s %s after %d failed sign-ins (%s), for %d minutes",
            count.kind,
            address
            if count.kind == SignInLockout.Kind.ADDRESS
            else (f"user {user.pk}" if user else "(no such user)"),
            failures[count],
            where,
            settings.SIGN_IN_LOCKOUT_MINUTES,
        )
    return until
