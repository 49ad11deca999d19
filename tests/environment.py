"""Loaded by pytest before Django's settings (`-p tests.environment` in pyproject.toml).

Tasks and channel-layer messages of this test session stay in this session: a timer a test
started (an offer's ring timeout, say) must never fire into another test or another run, and
messages for a media process that no test runs must not pile up across runs.
"""

import os
import uuid

SESSION = uuid.uuid4().hex[:12]
os.environ["CELERY_QUEUE"] = f"test-{SESSION}"
# The suite's one real worker takes only pings: product tasks it ran would touch the database
# under the tests' feet (a flush racing a task deadlocked once on PostgreSQL).
os.environ["HEALTHZ_CELERY_QUEUE"] = f"test-{SESSION}-worker"
os.environ["CHANNEL_LAYER_PREFIX"] = f"test-{SESSION}"
# Rate counts and sign-in lockouts too: a lockout a test causes must not lock out another run.
os.environ["CACHE_KEY_PREFIX"] = f"test-{SESSION}"
# A closed dashboard's offline timer would otherwise fire into a later test's agent of the same id.
os.environ["AGENT_DISCONNECT_GRACE_S"] = "3600"
# No presence ping in a test's frames (every 20 min): the presence tests set their own.
os.environ["AGENT_SOCKET_TTL_S"] = "3600"
# Webhook events are handled in the request that brings them unless a test says otherwise (the
# worker's batches are tested on their own: whatsapp/tests/test_webhook_worker.py).
os.environ.setdefault("WEBHOOK_HANDLE_IN_WORKER", "false")
