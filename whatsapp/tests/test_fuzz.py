"""Whatever a signed body holds, the endpoint answers without a 5xx and stores only whole events."""

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whatsapp.events import event_from_context
from whatsapp.models import WebhookEvent
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
VALID = [
    payloads.user_call_connect(),
    payloads.business_call_connect(),
    payloads.call_status("RINGING"),
    payloads.call_terminate(failed=True, answered=False),
    payloads.text_message(),
    payloads.button_reply(),
    payloads.permission_reply(is_permanent=False, expiration_timestamp=1753186982),
    payloads.referral_message(),
    payloads.message_status("delivered"),
    payloads.settings_update(),
    payloads.account_restriction(),
    payloads.unknown_field(),
]


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, (*path, index))


@st.composite
def mutated_payloads(draw):
    """A valid delivery with one part replaced by arbitrary JSON, or removed."""
    payload = copy.deepcopy(draw(st.sampled_from(VALID)))
    path = draw(st.sampled_from(list(_paths(payload))[1:]))
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return payload


def assert_no_5xx_and_whole_events(client, body: bytes) -> None:
    response = post_webhook(client, body)

    assert response.status_code < 500
    for record in WebhookEvent.objects.all():
        rebuilt = event_from_context(record.payload)
        assert rebuilt.idempotency_key == record.idempotency_key, record.payload
        assert rebuilt.kind == record.kind


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.django_db
@FUZZ
@given(payload=mutated_payloads())
def test_fuzz_mutated_deliveries(client, payload):
    assert_no_5xx_and_whole_events(client, json.dumps(payload).encode())


@pytest.mark.django_db
@FUZZ
@given(payload=json_values)
def test_fuzz_arbitrary_json(client, payload):
    assert_no_5xx_and_whole_events(client, json.dumps(payload).encode())


@pytest.mark.django_db
@FUZZ
@given(body=st.binary(max_size=200))
def test_fuzz_arbitrary_bytes(client, body):
    assert_no_5xx_and_whole_events(client, body)
