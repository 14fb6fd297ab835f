"""Rapport settings, read from the environment.

With nothing set, Rapport runs on SQLite (WAL) under the data directory and keeps a
generated secret key there, so that one command runs it on a fresh machine. For
production set the variables the README lists; `rapport check --deploy` then passes.
"""

import ipaddress
import os
import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _data_dir() -> Path:
    explicit = os.environ.get("RAPPORT_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser().resolve()
    # A source checkout keeps its state beside the code; an installed package in the
    # user's data directory, never inside site-packages.
    if (REPO_DIR / "pyproject.toml").exists():
        return REPO_DIR / "var"
    return Path.home() / ".local" / "share" / "rapport"


DATA_DIR = _data_dir()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    explicit = os.environ.get("SECRET_KEY")
    if explicit:
        return explicit
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(64)
    # Created with 0600 so that another local user cannot forge sessions.
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Django's admin on a site that requires a TOTP code (rapport/tenancy/admin_site.py).
    "rapport.tenancy.admin_apps.RapportAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "django_htmx",
    "csp",
    # Before django_tasks_db: core's `db_worker` (with a heartbeat and leases) wins.
    "rapport.core",
    "django_tasks",
    "django_tasks_db",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "rapport.tenancy",
    "rapport.ingest",
    "rapport.profiles",
    "rapport.identity",
    "rapport.segments",
    "rapport.predictions",
    "rapport.analytics",
    "rapport.channels",
    "rapport.journeys",
    "rapport.decisions",
    "rapport.sales",
    "rapport.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "rapport.core.middleware.ApiErrorMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "rapport.web.middleware.UserLanguageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "rapport.urls"
WSGI_APPLICATION = "rapport.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "rapport.web.context_processors.workspace",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------

DEFAULT_DATABASE_URL = f"sqlite:///{DATA_DIR / 'rapport.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "600")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers run while one writer commits; IMMEDIATE takes the write
        # lock at BEGIN so that two writers queue instead of failing mid-transaction.
        "init_command": (
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "PRAGMA foreign_keys=ON;"
            "PRAGMA busy_timeout=20000;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "tenancy.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"

# --- Background work ------------------------------------------------------------------

# The database backend writes the task row in the caller's transaction: a task
# enqueued by a change that rolls back disappears with it.
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}
# A worker beats every few seconds; a task whose worker has not beaten for this long
# (or whose process is gone, on the same host) is put back for another worker, at most
# RAPPORT_TASK_MAX_TAKEOVERS times, then failed (rapport/core/leases.py).
RAPPORT_WORKER_LEASE_SECONDS = float(os.environ.get("RAPPORT_WORKER_LEASE_SECONDS", "30"))
RAPPORT_TASK_MAX_TAKEOVERS = int(os.environ.get("RAPPORT_TASK_MAX_TAKEOVERS", "3"))

# The Tracking API commits concurrent requests together (rapport/ingest/group_commit.py).
RAPPORT_INGEST_GROUP_COMMIT = env_bool("RAPPORT_INGEST_GROUP_COMMIT", True)
RAPPORT_INGEST_WRITERS = int(os.environ.get("RAPPORT_INGEST_WRITERS", "1"))

# The event pipeline (rapport/ingest/pipeline.py): a consumer that fails is tried again
# after RETRY seconds, doubling up to RETRY_MAX, and parked after ATTEMPTS tries; a
# worker holds a batch for LEASE seconds (renewed while it works); every SWEEP seconds
# the sweeper hands batches overdue by DEADLINE seconds, and not held, to a worker again.
RAPPORT_PIPELINE_ATTEMPTS = int(os.environ.get("RAPPORT_PIPELINE_ATTEMPTS", "8"))
RAPPORT_PIPELINE_RETRY_SECONDS = float(os.environ.get("RAPPORT_PIPELINE_RETRY_SECONDS", "5"))
RAPPORT_PIPELINE_RETRY_MAX_SECONDS = float(
    os.environ.get("RAPPORT_PIPELINE_RETRY_MAX_SECONDS", "600")
)
RAPPORT_PIPELINE_LEASE_SECONDS = float(os.environ.get("RAPPORT_PIPELINE_LEASE_SECONDS", "120"))
RAPPORT_PIPELINE_DEADLINE_SECONDS = float(
    os.environ.get("RAPPORT_PIPELINE_DEADLINE_SECONDS", "120")
)
# How often each worker looks for periodic jobs that are due (rapport/core/schedule.py).
RAPPORT_SCHEDULE_CHECK_SECONDS = float(os.environ.get("RAPPORT_SCHEDULE_CHECK_SECONDS", "15"))
RAPPORT_PIPELINE_SWEEP_SECONDS = int(os.environ.get("RAPPORT_PIPELINE_SWEEP_SECONDS", "60"))
# A worker takes untried batches waiting behind the one it runs along, up to this many
# events in all (0: each batch alone).
RAPPORT_PIPELINE_MERGE_EVENTS = int(os.environ.get("RAPPORT_PIPELINE_MERGE_EVENTS", "5000"))

# Segments: memory PostgreSQL may use per hash while evaluating a rule over the whole
# workspace (rapport/segments/services.py), and how often the scheduler re-checks
# segments with time windows and recomputes RFM and lifecycle stages.
RAPPORT_SEGMENT_WORK_MEM = os.environ.get("RAPPORT_SEGMENT_WORK_MEM", "256MB")
RAPPORT_SEGMENTS_REFRESH_SECONDS = int(os.environ.get("RAPPORT_SEGMENTS_REFRESH_SECONDS", "900"))
# Scheduled audience exports (rapport/segments/audiences.py): where their files go, how
# often the workers look for a due one, and how many runs of a schedule keep their file.
RAPPORT_EXPORT_DIR = os.environ.get("RAPPORT_EXPORT_DIR") or str(DATA_DIR / "exports")
RAPPORT_AUDIENCE_CHECK_SECONDS = int(os.environ.get("RAPPORT_AUDIENCE_CHECK_SECONDS", "300"))
# How often each workspace's due journey steps are looked for (rapport/journeys); an
# enrolment or an awaited event wakes the runner at once besides.
RAPPORT_JOURNEYS_RUN_SECONDS = int(os.environ.get("RAPPORT_JOURNEYS_RUN_SECONDS", "5"))
# Next best action: how often the learning job runs, and how long a process trusts its
# cached catalogue, models and settings before it checks them again.
RAPPORT_DECISIONS_LEARN_SECONDS = int(os.environ.get("RAPPORT_DECISIONS_LEARN_SECONDS", "60"))
RAPPORT_DECISIONS_CACHE_SECONDS = float(os.environ.get("RAPPORT_DECISIONS_CACHE_SECONDS", "1"))
# Enrolments the runner takes in one transaction.
RAPPORT_JOURNEYS_BATCH = int(os.environ.get("RAPPORT_JOURNEYS_BATCH", "2000"))
RAPPORT_AUDIENCE_RUNS_KEPT = int(os.environ.get("RAPPORT_AUDIENCE_RUNS_KEPT", "7"))
RAPPORT_RFM_REFRESH_SECONDS = int(os.environ.get("RAPPORT_RFM_REFRESH_SECONDS", "86400"))
# Predictions: retrain weekly, score daily with the latest models.
RAPPORT_MODELS_TRAIN_SECONDS = int(os.environ.get("RAPPORT_MODELS_TRAIN_SECONDS", "604800"))
RAPPORT_MODELS_SCORE_SECONDS = int(os.environ.get("RAPPORT_MODELS_SCORE_SECONDS", "86400"))
# How often the KPI snapshots are taken (each takes yesterday, the last complete day).
RAPPORT_KPI_SNAPSHOT_SECONDS = int(os.environ.get("RAPPORT_KPI_SNAPSHOT_SECONDS", "86400"))

# --- Internationalisation -------------------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ru", _("Russian"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Numbers and dates follow the person's language, one format per language across the UI:
# templates use format names (SHORT_DATE_FORMAT...), rapport/formats holds ours.
USE_THOUSAND_SEPARATOR = True
FORMAT_MODULE_PATH = ["rapport.formats"]

# --- Static files ---------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the apps' folders when collectstatic has not run (tests, dev).
WHITENOISE_USE_FINDERS = True
# Third-party front-end files come from npm (package.json), never from the repository.
RAPPORT_NODE_MODULES = os.environ.get("RAPPORT_NODE_MODULES") or str(REPO_DIR / "node_modules")
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "rapport.core.staticfinders.NpmFinder",
]

# --- API ------------------------------------------------------------------------------

# The management API refuses bodies above this size with a 413 before parsing them.
RAPPORT_API_MAX_BODY_BYTES = int(os.environ.get("RAPPORT_API_MAX_BODY_BYTES", 1024 * 1024))
RAPPORT_UPLOAD_MAX_BYTES = int(os.environ.get("RAPPORT_UPLOAD_MAX_BYTES", 512 * 1024 * 1024))
DATA_UPLOAD_MAX_MEMORY_SIZE = max(RAPPORT_API_MAX_BODY_BYTES, 2_621_440)
NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_LIMIT = 500

# --- Security -------------------------------------------------------------------------

RAPPORT_HTTPS = env_bool("RAPPORT_HTTPS", False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if RAPPORT_HTTPS:
    SECURE_SSL_REDIRECT = True
    # Load balancers probe over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 31_536_000))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
# Pages run only Rapport's own files: no inline script or style, nothing from elsewhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# The Django admin sees every workspace: it asks for a TOTP code besides the password
# (enrol a device with `rapport user totp-enrol EMAIL`), and can be switched off.
RAPPORT_ADMIN_ENABLED = env_bool("RAPPORT_ADMIN_ENABLED", True)
OTP_TOTP_ISSUER = "Rapport"

# Invitations to a workspace are mailed with a link that works once, for this long.
# The link starts with RAPPORT_PUBLIC_URL (e.g. https://crm.example.com); without it,
# with the address the inviting admin used.
RAPPORT_INVITATION_HOURS = int(os.environ.get("RAPPORT_INVITATION_HOURS", "72"))
RAPPORT_PUBLIC_URL = os.environ.get("RAPPORT_PUBLIC_URL", "").rstrip("/")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "rapport@localhost")

# Messages to customers (rapport/channels): the install's mail transport as a URL
# (smtp://user:pass@host:587, smtp+tls://..., smtps://..., anymail://<esp>?api_key=...);
# a workspace may set its own in Settings. Empty: mail is kept in the local outbox
# (shown in the UI), sent nowhere. A failed send is tried again after 30 s, 2 min,
# 8 min... (RAPPORT_MESSAGE_RETRY_SECONDS times 4 to the power of the attempts), at most
# RAPPORT_MESSAGE_MAX_ATTEMPTS times, then recorded as failed.
RAPPORT_EMAIL_URL = os.environ.get("RAPPORT_EMAIL_URL", "")
# Providers post bounces, complaints and opens to /m/esp/<esp>/tracking/ (django-anymail)
# with this "user:password" as HTTP basic auth; without it those posts are refused.
ANYMAIL = {"WEBHOOK_SECRET": os.environ.get("RAPPORT_ANYMAIL_WEBHOOK_SECRET", "")}
RAPPORT_MESSAGE_MAX_ATTEMPTS = int(os.environ.get("RAPPORT_MESSAGE_MAX_ATTEMPTS", "5"))
RAPPORT_MESSAGE_RETRY_SECONDS = float(os.environ.get("RAPPORT_MESSAGE_RETRY_SECONDS", "30"))

# Signing in is throttled per address and per account (django-ratelimit). The counts
# live in a cache every server process on the machine shares (files under the data
# directory).
RAPPORT_SIGN_IN_RATE_IP = os.environ.get("RAPPORT_SIGN_IN_RATE_IP", "30/5m")
RAPPORT_SIGN_IN_RATE_ACCOUNT = os.environ.get("RAPPORT_SIGN_IN_RATE_ACCOUNT", "10/5m")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(DATA_DIR / "cache"),
    }
}

# Reverse proxies (addresses or networks, e.g. "10.0.0.5,172.16.0.0/12") whose
# X-Forwarded-For entries are believed when working out a client's address for
# throttling and the audit log (rapport/tenancy/client_address.py). Empty: none, the
# connection's own address is the client's.
RAPPORT_TRUSTED_PROXIES = env_list("RAPPORT_TRUSTED_PROXIES", [])
for _proxy in RAPPORT_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"RAPPORT_TRUSTED_PROXIES: {_proxy!r} is not an IP address or network"
        ) from None
RATELIMIT_IP_META_KEY = "rapport.tenancy.client_address.client_address_for_throttle"

RAPPORT_BEHIND_PROXY = env_bool("RAPPORT_BEHIND_PROXY", False)
if RAPPORT_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

# --- Logging --------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}
