"""The API against its own OpenAPI schema: requests generated from the schema (valid and not) get
no server error and answers that match what the schema says (schemathesis)."""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from integrations.models import ApiKey
from integrations.tests.conftest import bearer

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())


@pytest.fixture
def connection_kept():
    """The test's database connection stays open across requests (as Django's test client keeps
    it): the WSGI handler would close it when each request finishes."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_schema(case, floor, make_key, connection_kept):
    token = make_key(ApiKey.Scope.ADMIN)

    case.call_and_validate(headers={"Authorization": bearer(token)["HTTP_AUTHORIZATION"]})
