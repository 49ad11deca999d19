"""Loaded by pytest before Django's settings (`-p tests.environment` in pyproject.toml).

Tasks the suite sends go to a Celery queue of this test session only: a timer that a test
started (an offer's ring timeout, say) must never fire into another test or another run.
"""

import os
import uuid

os.environ["CELERY_QUEUE"] = f"test-{uuid.uuid4().hex[:12]}"
