"""One settings module, driven by environment variables.

With no variables set, the embedded default runs: SQLite in ``var/`` (WAL), Celery over a file-system
broker, e-mail written to ``var/mail/``, and secrets generated once into ``var/``. Setting
``SECRET_KEY`` switches to production: the keys in ``PRODUCTION_REQUIRED`` must then be set, and the
security settings that ``manage.py check --deploy`` asks for are on.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()

PRODUCTION = "SECRET_KEY" in os.environ
if not PRODUCTION:
    # The embedded default keeps its database, the simulated bank, e-mails with live set-up links and its
    # secrets in var/: only this user may read them. var/ itself is closed (also an older install's), and
    # everything this process creates (SQLite's WAL files, mails, uploads...) is 0600 / 0700.
    os.umask(0o077)
    VAR_DIR.chmod(0o700)
PRODUCTION_REQUIRED = ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "CARD_FINGERPRINT_KEY")
if PRODUCTION:
    missing = [key for key in PRODUCTION_REQUIRED if not os.environ.get(key)]
    if missing:
        raise ImproperlyConfigured(f"Production settings need these environment variables: {', '.join(missing)}")


def _embedded_secret(name: str) -> str:
    """A secret generated once and kept in var/, so the embedded default survives restarts."""
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env("SECRET_KEY", default=None) or _embedded_secret("secret_key")
# Keyed fingerprint of card numbers (DESIGN "Card data"): the key lives outside the database.
CARD_FINGERPRINT_KEY = env("CARD_FINGERPRINT_KEY", default=None) or _embedded_secret("card_fingerprint_key")

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_tables2",
    "django_filters",
    "chartjs",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "payments",
    "recurring",
    "batch",
    "reports",
    "api",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "billing_bo.uploads.RequestBodyLimitMiddleware",
    "billing_bo.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "accounts.middleware.SessionIdleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.VerifiedSessionRequiredMiddleware",
    "accounts.middleware.MerchantTimezoneMiddleware",
    "accounts.middleware.NoStoreWhenSignedInMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "billing_bo.urls"
WSGI_APPLICATION = "billing_bo.wsgi.application"

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
                "accounts.context_processors.navigation",
            ],
        },
    },
]

# Database: DATABASE_URL (PostgreSQL in production), else SQLite in var/ with WAL.
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": env.db("DATABASE_URL")}
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # No JIT: our queries are index ranges and streamed exports, where compiling costs more than it saves
    # (a 200k-row export spent 0.24 s of 1.0 s compiling expressions it then ran once per row).
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
# Redis redelivers a task not acknowledged within this time: every countdown must stay well below it.
REDIS_VISIBILITY_TIMEOUT = 3600
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Auth, sessions (TESTING.md "Decisions"): 15 minutes idle ends a session.
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.UserBackend"]
LOGIN_URL = "accounts:sign_in"
LOGIN_REDIRECT_URL = "reports:dashboard"
LOGOUT_REDIRECT_URL = "accounts:sign_in"
# With Redis, sessions are read from the cache and kept in the database too: a request does not query the
# database for its session, a session outlives a cache flush, and a cache outage falls back to the
# database. Sessions are ended through the SessionStore (accounts.services), which clears both. Without
# Redis the cache is each process's own memory, where a session ended in one web worker would live on in
# another: sessions are then in the database only.
SESSION_ENGINE = "django.contrib.sessions.backends." + ("cached_db" if REDIS_URL else "db")
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=15 * 60)
SESSION_ABSOLUTE_SECONDS = env.int("SESSION_ABSOLUTE_SECONDS", default=12 * 3600)  # however active
SESSION_REFRESH_SECONDS = 60  # activity moves the idle deadline once a minute at most (SessionIdleMiddleware)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = env.int("LINK_VALID_SECONDS", default=3 * 24 * 3600)  # enrollment and reset links
# Links in e-mails sent outside a request (create_merchant, create_operator): by default the address `make run`
# serves (WEB_HOST, WEB_PORT as in the Procfile; listening on every address means this machine's).
_WEB_HOST = env("WEB_HOST", default="127.0.0.1")
_WEB_HOST = "127.0.0.1" if _WEB_HOST in ("", "0.0.0.0", "::") else _WEB_HOST
SITE_URL = env("SITE_URL", default=f"http://{_WEB_HOST}:{env('WEB_PORT', default='8000')}")
SIGN_IN_MAX_FAILURES = 5
SIGN_IN_LOCK_SECONDS = 30 * 60
# Sign-in rate limits (accounts/ratelimit.py), counted in the cache: attempts per client address and per
# user name in a window; past SLOW_AFTER one attempt per SIGN_IN_SLOW_SECONDS, past REFUSE_AFTER none.
SIGN_IN_RATE_WINDOW_SECONDS = 3600
# Proxies in front of the web server that append the client's address to X-Forwarded-For (0: none; the
# client is REMOTE_ADDR). Behind a proxy, without it every client would share the proxy's address.
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=0)
SIGN_IN_SLOW_SECONDS = 2
SIGN_IN_IP_SLOW_AFTER, SIGN_IN_IP_REFUSE_AFTER = 10, 30
SIGN_IN_USERNAME_SLOW_AFTER, SIGN_IN_USERNAME_REFUSE_AFTER = SIGN_IN_MAX_FAILURES, 20

# TOTP (TESTING.md): 160-bit keys, SHA1, 6 digits, 30 s steps, one step of drift either way.
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", default="Billing Back Office")
OTP_TOTP_THROTTLE_FACTOR = env.int("OTP_TOTP_THROTTLE_FACTOR", default=1)

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# TESTING "Pages": only this site's own files run or style a page; no inline code (the browser lane fails on
# any violation). data: images are the inline SVG / Chart.js canvases' exports.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^health$"]  # the container health check speaks plain HTTP
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"  # storage; pages render in the merchant's zone (MerchantTimezoneMiddleware)
USE_I18N = True
USE_TZ = True
DEFAULT_MERCHANT_TIME_ZONE = "Asia/Jakarta"

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Serve straight from the source folders unless collectstatic ran (production image).
WHITENOISE_USE_FINDERS = not PRODUCTION
MEDIA_ROOT = VAR_DIR / "media"

# The acquirer (P1): a dotted path to an ``payments.acquirer.Acquirer``. The simulated bank keeps its
# own storage outside the back office's database, and can be told to be slow or to fail.
ACQUIRER = env("ACQUIRER", default="payments.acquirer.simulated.SimulatedBank")
SIMULATED_BANK_PATH = env("SIMULATED_BANK_PATH", default=str(VAR_DIR / "simulated-bank.sqlite3"))
SIMULATED_BANK_LATENCY_MS = env.float("SIMULATED_BANK_LATENCY_MS", default=0)  # median (fixed when no p99)
SIMULATED_BANK_LATENCY_P99_MS = env.float("SIMULATED_BANK_LATENCY_P99_MS", default=0)  # > median: random
SIMULATED_BANK_TIMEOUT_RATE = env.float("SIMULATED_BANK_TIMEOUT_RATE", default=0)
SIMULATED_BANK_TRANSIENT_RATE = env.float("SIMULATED_BANK_TRANSIENT_RATE", default=0)

# Charging (P3). Task retries stay far below the Redis visibility timeout (one hour).
CHARGE_MAX_ATTEMPTS = env.int("CHARGE_MAX_ATTEMPTS", default=3)  # attempts after transient declines (91, 96)
CHARGE_RETRY_COUNTDOWNS = (10, 30, 90, 270, 600, 900)  # seconds, for time-outs and an unreachable bank
CHARGE_CHUNK = env.int("CHARGE_CHUNK", default=200)  # transactions per charge_many task
# Bank calls in flight per charge_many task; SQLite takes one writer at a time, so one thread there.
CHARGE_THREADS = env.int("CHARGE_THREADS", default=16 if os.environ.get("DATABASE_URL") else 1)
CHARGE_STUCK_SECONDS = env.int("CHARGE_STUCK_SECONDS", default=120)  # processing longer: the janitor asks the bank
CHARGE_REQUEUE_SECONDS = env.int("CHARGE_REQUEUE_SECONDS", default=1800)  # queued, never claimed: queue again
CHARGE_GIVE_UP_SECONDS = env.int("CHARGE_GIVE_UP_SECONDS", default=24 * 3600)  # unknown at the bank this long: failed
JANITOR_BATCH = env.int("JANITOR_BATCH", default=5000)
# The scheduler (R7, R8): chunk size, a runner's lease on a day, how far back a tick catches up.
# Billings per database transaction: larger on PostgreSQL (a chunk costs a few statements whatever its size).
SCHEDULER_CHUNK = env.int("SCHEDULER_CHUNK", default=10_000 if os.environ.get("DATABASE_URL") else 2000)
SCHEDULER_LEASE_SECONDS = env.int("SCHEDULER_LEASE_SECONDS", default=600)
SCHEDULER_MAX_CATCH_UP_DAYS = env.int("SCHEDULER_MAX_CATCH_UP_DAYS", default=31)
# Batch uploads (B1-B8).
BATCH_MAX_BYTES = env.int("BATCH_MAX_BYTES", default=50 * 1024 * 1024)
BATCH_MAX_ROWS = env.int("BATCH_MAX_ROWS", default=2_000_000)
BATCH_XLSX_MAX_ENTRIES = 200
BATCH_XLSX_MAX_INFLATED_BYTES = 500 * 1024 * 1024
BATCH_XLSX_MAX_RATIO = 200
BATCH_CHUNK = env.int("BATCH_CHUNK", default=1000)  # rows per database transaction when processing
BATCH_UPLOAD_DIR = VAR_DIR / "uploads"  # raw files wait here for processing, then are deleted
BATCH_LEASE_SECONDS = env.int("BATCH_LEASE_SECONDS", default=300)  # a silent worker's batch is re-queued after
BATCH_MAX_ATTEMPTS = env.int("BATCH_MAX_ATTEMPTS", default=3)  # workers lost on one step: then it fails with a reason
BATCH_EXPIRE_DAYS = env.int("BATCH_EXPIRE_DAYS", default=7)  # a checked file not processed by then is deleted
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Limits applied while a body streams in, before Django spools it (billing_bo/uploads.py): a request announcing
# more is refused unread (413); a file stops being spooled at BATCH_MAX_BYTES.
REQUEST_MAX_BYTES = env.int("REQUEST_MAX_BYTES", default=BATCH_MAX_BYTES + 1024 * 1024)
FILE_UPLOAD_HANDLERS = [
    "billing_bo.uploads.UploadSizeLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Card update links (issue #19): how long the link in a cardholder's e-mail works.
CARD_UPDATE_LINK_DAYS = env.int("CARD_UPDATE_LINK_DAYS", default=14)
# Callbacks to merchants (P8): waits before the 2nd, 3rd... attempt; then the delivery is failed.
CALLBACK_RETRY_COUNTDOWNS = (60, 300, 900, 3600, 6 * 3600, 24 * 3600)
CALLBACK_TIMEOUT_SECONDS = env.int("CALLBACK_TIMEOUT_SECONDS", default=10)
# Deliveries per deliver_callbacks task (notify_many): attempted one after the other, so a chunk of time-outs
# (CALLBACK_CHUNK * CALLBACK_TIMEOUT_SECONDS) stays well inside the broker's visibility timeout.
CALLBACK_CHUNK = env.int("CALLBACK_CHUNK", default=100)
# Callbacks go to public addresses only (billing_bo/lib/outbound.py). Tests alone turn this on for a server on
# 127.0.0.1; it is never read from the environment.
CALLBACK_ALLOW_LOOPBACK = False

# The Merchant REST API (api/, README "API"): keys with scopes, problem+json errors, throttling per key in
# the default cache (Redis in production), answers kept for Idempotency-Key headers.
API_KEY_RATE = env("API_KEY_RATE", default="600/min")
API_IDEMPOTENCY_SECONDS = 24 * 3600
API_IDEMPOTENCY_WAIT_SECONDS = env.float("API_IDEMPOTENCY_WAIT_SECONDS", default=30)  # a concurrent twin's wait
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttles.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": API_KEY_RATE},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.problems.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Billing Back Office: Merchant API",
    "DESCRIPTION": "What the back office's screens do, for the merchant's own systems. Authenticate with "
    "`Authorization: Api-Key <key>`. Errors are application/problem+json (RFC 9457); amounts are whole "
    "Rupiah integers; dates ISO 8601; times with their offset.",
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "BillingStatusEnum": "recurring.models.Billing.Status",
        "TransactionStatusEnum": "payments.models.Transaction.Status",
        "AdjustmentStatusEnum": "payments.models.Adjustment.Status",
        "BatchStatusEnum": "batch.models.Batch.Status",
        "BatchRowStatusEnum": "batch.models.BatchRow.Status",
        "TransactionKindEnum": "payments.models.Transaction.Kind",
        "BatchKindEnum": "batch.models.Batch.Kind",
        "ScheduleKindEnum": "recurring.schedule.KINDS",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.complete_errors",
    ],
}

# E-mail: SMTP from the environment in production, files in var/mail/ otherwise.
if os.environ.get("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env("EMAIL_HOST")
    EMAIL_PORT = env.int("EMAIL_PORT", default=587)
    EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Billing Back Office <no-reply@localhost>")

# Celery: Redis in production, a file-system broker in var/ otherwise (no server to install).
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": REDIS_VISIBILITY_TIMEOUT}
else:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # kombu's default is "control" in the working directory
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'celery-results'}"
    (VAR_DIR / "celery-results").mkdir(exist_ok=True)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {
    "payments-janitor": {"task": "payments.janitor", "schedule": 60.0},
    "payments-callbacks": {"task": "payments.send_due_callbacks", "schedule": 60.0},
    "recurring-tick": {"task": "recurring.tick", "schedule": env.float("SCHEDULER_TICK_SECONDS", default=300.0)},
    "batch-janitor": {"task": "batch.janitor", "schedule": 60.0},
    # Expiring and declined cards (issue #19): hourly, so each merchant's local morning comes soon; each
    # notice goes once per billing, reason and period whatever the runs.
    "recurring-card-notices": {"task": "recurring.card_notices", "schedule": 3600.0},
    "api-idempotency-purge": {"task": "api.purge_idempotency", "schedule": 3600.0},
}

# Structured logs: one key=value line per event on stderr.
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "kv": {"format": "ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"},
    },
    "filters": {"client_errors_one_line": {"()": "billing_bo.lib.log_filters.ClientErrorsOnOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "kv"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django.request": {"filters": ["client_errors_one_line"]},  # a 403 or 404 is one line, no traceback
    },
}

# Reports
# All Report (T1): a search covers at most REPORTS_MAX_RANGE_DAYS days of execute dates, so every search
# is a bounded index range; left empty, the range is the last REPORTS_DEFAULT_RANGE_DAYS days.
REPORTS_MAX_RANGE_DAYS = env.int("REPORTS_MAX_RANGE_DAYS", default=366)
REPORTS_DEFAULT_RANGE_DAYS = env.int("REPORTS_DEFAULT_RANGE_DAYS", default=31)
REPORTS_PAGE_SIZE = env.int("REPORTS_PAGE_SIZE", default=50)
REPORTS_XLSX_MAX_ROWS = 1_048_575  # a worksheet's rows, less the header
