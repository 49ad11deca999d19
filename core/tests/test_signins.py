"""Password sign-ins throttled per account and per address, one throttle for /login/, admin's
sign-in and the call widget's (core.signins)."""

import logging

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY

from agents.tests.factories import PASSWORD, UserFactory
from core import signins
from core.models import SignInLockout

pytestmark = pytest.mark.django_db
LOCKED = "Too many failed sign-ins; try again in 15 minutes."


@pytest.fixture(autouse=True)
def fresh_counts(settings):
    """Fast hashes, and no counts or lockouts left from another test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.SIGN_IN_FAILURES_PER_ACCOUNT = 10
    settings.SIGN_IN_FAILURES_PER_ADDRESS = 30
    settings.SIGN_IN_LOCKOUT_MINUTES = 15
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    pattern = f"{django_settings.CACHES['api']['KEY_PREFIX']}:*:sign-in:*"
    client.delete(*client.keys(pattern), "absent")
    yield
    client.delete(*client.keys(pattern), "absent")
    client.close()


def sign_in(client, path: str, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.parametrize(("path", "where"), [("/login/", "login"), ("/admin/login/", "admin")])
def test_sign_in_locks_out_an_account_and_refuses_even_its_right_password(client, path, where):
    user = UserFactory(username="dana", is_staff=True)
    for _ in range(10):
        assert sign_in(client, path, "dana", "guess").status_code == 200

    locked = sign_in(client, path, "dana", PASSWORD, address="198.51.100.9")

    assert locked.status_code == (429 if path == "/login/" else 200)
    assert LOCKED in locked.content.decode()
    assert SESSION_KEY not in client.session
    lockout = SignInLockout.objects.get()
    assert (lockout.kind, lockout.where, lockout.username, lockout.user) == ("account", where, "dana", user)
    assert (lockout.address, lockout.failures) == ("203.0.113.7", 10)


def test_sign_in_lockout_is_logged_once_when_it_starts(client, caplog):
    user = UserFactory(username="erin")
    for _ in range(9):
        sign_in(client, "/login/", "erin", "guess")

    with caplog.at_level(logging.WARNING, logger="core.signins"):
        sign_in(client, "/login/", "erin", "guess")
        sign_in(client, "/login/", "erin", "guess")

    assert [record.getMessage() for record in caplog.records if record.name == "core.signins"] == [
        f"sign-in lockout: account user {user.pk} after 10 failed sign-ins (login), for 15 minutes"
    ]


def test_sign_in_locks_out_an_address_trying_many_accounts(client, settings):
    settings.SIGN_IN_FAILURES_PER_ADDRESS = 5
    UserFactory(username="frank")
    for number in range(5):
        sign_in(client, "/login/", f"nobody{number}", "guess")

    locked = sign_in(client, "/login/", "frank", PASSWORD)
    elsewhere = sign_in(client, "/login/", "frank", PASSWORD, address="198.51.100.10")

    assert (locked.status_code, LOCKED in locked.content.decode()) == (429, True)
    assert elsewhere.status_code == 302
    assert list(SignInLockout.objects.values_list("kind", "address", "user")) == [
        ("address", "203.0.113.7", None)
    ]


def test_sign_in_lockout_ends_after_the_configured_time(client, settings, monkeypatch):
    settings.SIGN_IN_LOCKOUT_MINUTES = 2
    UserFactory(username="gail")
    for _ in range(10):
        sign_in(client, "/login/", "gail", "guess")
    start = signins.now_s()

    monkeypatch.setattr(signins, "now_s", lambda: start + 60)
    still_locked = sign_in(client, "/login/", "gail", PASSWORD)
    monkeypatch.setattr(signins, "now_s", lambda: start + 121)
    after = sign_in(client, "/login/", "gail", PASSWORD)

    assert (still_locked.status_code, "try again in 1 minute." in still_locked.content.decode()) == (
        429,
        True,
    )
    assert after.status_code == 302


def test_sign_in_tries_sent_past_the_limit_are_not_checked(client, settings):
    UserFactory(username="hugo")
    client_counts = signins._counts(username="hugo", address="203.0.113.7")
    from django.core.cache import caches

    caches["api"].set(client_counts[0].failures, 10, timeout=60)  # ten tries already under way

    response = sign_in(client, "/login/", "hugo", PASSWORD)

    assert response.status_code == 429
    assert SESSION_KEY not in client.session


def test_sign_in_good_sign_ins_never_add_up_to_a_lockout(client):
    UserFactory(username="iris")

    statuses = [sign_in(client, "/login/", "iris", PASSWORD).status_code for _ in range(40)]
    for _ in range(9):
        sign_in(client, "/login/", "iris", "guess")
    last = sign_in(client, "/login/", "iris", PASSWORD)

    assert statuses == [302] * 40
    assert last.status_code == 302
    assert not SignInLockout.objects.exists()


def test_sign_in_lockouts_are_shown_read_only_in_admin(client):
    UserFactory(username="kim")
    for _ in range(10):
        sign_in(client, "/login/", "kim", "guess")
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)

    listing = client.get("/admin/core/signinlockout/")
    lockout = SignInLockout.objects.get()
    change = client.post(f"/admin/core/signinlockout/{lockout.pk}/change/", {"username": "someone"})

    assert listing.status_code == 200
    assert "kim" in listing.content.decode()
    assert client.get("/admin/core/signinlockout/add/").status_code == 403
    assert change.status_code == 403
    assert SignInLockout.objects.get().username == "kim"
