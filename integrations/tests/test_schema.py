"""The API against its own OpenAPI schema: requests generated from the schema (valid and not) get
no server error and answers that match what the schema says (schemathesis)."""

import datetime

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from integrations.models import ApiKey
from integrations.tests.conftest import bearer
from messaging.reports import MAX_REPORT_DAYS

# A schema says how a value is written, not what it names: a well-formed phone number nobody has,
# an agent who does not serve the number, a template the account lacks are refused with 422
# (documented on each write), which is the right answer to such schema-valid requests. Text never
# holds NUL characters (PostgreSQL cannot store them; DRF refuses them with 400).
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
config = SchemathesisConfig.from_dict(
    {
        "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}},
        "generation": {"allow-x00": False},
    }
)
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application(), config=config)


def report_period_made_valid(query: dict | None) -> dict | None:
    """A report's period starts before it ends and spans a year at most, which a schema cannot say
    (another period is refused with 400): a generated one is made so, from the days given or the
    reports' defaults. Anything but dates is left to be refused."""
    if not isinstance(query, dict):
        return query
    try:
        until = datetime.date.fromisoformat(query["until"]) if "until" in query else datetime.date.today()
        since = datetime.date.fromisoformat(query["since"]) if "since" in query else until
    except (TypeError, ValueError):
        return query
    since, until = sorted([since, until])
    if until - datetime.date.min >= datetime.timedelta(days=MAX_REPORT_DAYS - 1):
        since = max(since, until - datetime.timedelta(days=MAX_REPORT_DAYS - 1))
    return {**query, "since": since.isoformat(), "until": until.isoformat()}


def moments_made_representable(query: dict | None) -> dict | None:
    """A moment is written as RFC 3339 says, which admits one no clock can hold (the first hour of
    year 1 at an offset east of UTC is in year 0): such a generated moment is kept in UTC, and the
    API's answer to it (400, "Datetime value out of range") is checked in test_api_limits."""
    if not isinstance(query, dict):
        return query
    made = dict(query)
    for name in ("since", "until"):
        try:
            moment = datetime.datetime.fromisoformat(str(query[name]))
            moment.astimezone(datetime.UTC)
        except (KeyError, ValueError):
            continue
        except OverflowError:
            made[name] = moment.replace(tzinfo=datetime.UTC).isoformat()
    return made


def cursor_left_out(query: dict | None) -> dict | None:
    """A page cursor is a token the API wrote (a page's `next` or `previous` link), which a schema
    cannot describe: a made-up one is refused with 400 (test_api_limits), so generated ones are left
    out and the first page is asked for."""
    if not isinstance(query, dict):
        return query
    return {name: value for name, value in query.items() if name != "cursor"}


@pytest.fixture
def connection_kept():
    """The test's database connection stays open across requests (as Django's test client keeps
    it): the WSGI handler would close it when each request finishes."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def whatsapp_away(settings):
    """Writes that reach WhatsApp find nobody there, at once: they answer 502, as the schema says."""
    settings.WHATSAPP_GRAPH_URL, settings.WHATSAPP_MAX_RETRIES = "http://127.0.0.1:9/v23.0", 0


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_schema(case, floor, make_key, connection_kept, whatsapp_away):
    token = make_key(ApiKey.Scope.ADMIN)
    if case.path.startswith("/api/v1/reports/"):
        case.query = report_period_made_valid(case.query)
    case.query = moments_made_representable(cursor_left_out(case.query))

    case.call_and_validate(headers={"Authorization": bearer(token)["HTTP_AUTHORIZATION"]})
