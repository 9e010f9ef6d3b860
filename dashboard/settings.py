"""Quorum's settings, read from the environment.

With nothing set, the site is embedded: SQLite, a Celery broker kept in files, an MLflow store and
emails as files, all under `var/`. `DATABASE_URL`, `REDIS_URL`, `MLFLOW_TRACKING_URI` and
`EMAIL_URL` switch to real services. README.md lists every variable.
"""

import base64
import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

VAR_DIR = Path(env("QUORUM_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key_from(path: Path, fernet: bool = False) -> str:
    """Read the key kept in `var/`, generating it the first time; web and worker race here."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    # A Fernet key is 32 random bytes in URL-safe base64.
    key = (
        base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        if fernet
        else (secrets.token_urlsafe(64))
    )
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


SECRET_KEY = env("SECRET_KEY", default="") or _secret_key_from(VAR_DIR / "secret_key")
# Project secrets are encrypted with these Fernet keys: the first encrypts, all decrypt, so a
# new key goes first and `manage.py rotate_secrets` re-encrypts with it. Generated into var/.
QUORUM_SECRET_KEYS = env.list("QUORUM_SECRET_KEYS", default=[]) or [
    _secret_key_from(VAR_DIR / "secrets_key", fernet=True)
]
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Behind TLS (production): secure cookies, HSTS and a redirect to https.
HTTPS = env.bool("QUORUM_HTTPS", default=False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
BEHIND_PROXY = env.bool("QUORUM_BEHIND_PROXY", default=False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    AXES_IPWARE_PROXY_COUNT = 1
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "dashboard.views.errors.csrf_failure"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content Security Policy (django-csp): scripts only from Quorum's own static files, never inline
# (htmx, Plotly and the API docs load theirs from static/; charts carry their data in JSON
# blocks). Styles may be inline: Plotly and htmx set them as they draw.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "axes",
    "django_htmx",
    "django_celery_beat",
    "django_filters",
    "csp",
    "governance.access",
    "governance.audit",
    "governance.registry",
    "governance.approvals",
    "governance.notify",
    "governance.monitoring",
    "governance.fairness",
    "governance.delivery",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "dashboard.middleware.AuditContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "dashboard.middleware.DomainErrorMiddleware",
    # Last, so that it sees a failed login after every other middleware ran.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

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
                "dashboard.context_processors.navigation",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL says otherwise.
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # Web, worker and beat share the file: wait for locks instead of failing, and take
            # the write lock when a transaction starts so two writers never deadlock on upgrade.
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests share their database between threads (live server, worker): a file, not SQLite's
    # shared-cache memory database, whose table locks make concurrent writers fail.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(VAR_DIR / "test-db.sqlite3")
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis, when configured, carries Celery and the cache; otherwise both live in files.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "quorum",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost//"
if REDIS_URL:
    CELERY_RESULT_BACKEND = REDIS_URL
    # A message a worker took and never acknowledged (the worker died) goes back to the queue
    # after this many seconds; the job sweeper usually hands the job again sooner.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("QUORUM_BROKER_VISIBILITY_SECONDS", default=3600)
    }
else:
    CELERY_BROKER_FOLDER = VAR_DIR / "celery"
    # Kombu's filesystem transport, writing each message whole (dashboard/broker.py).
    CELERY_BROKER_TRANSPORT = "dashboard.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_FOLDER / "queue"),
        "data_folder_out": str(CELERY_BROKER_FOLDER / "queue"),
        "control_folder": str(CELERY_BROKER_FOLDER / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "control"):
        (CELERY_BROKER_FOLDER / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# A running job's worker notes that it is alive this often (seconds); a job whose last note is
# older than QUORUM_JOB_STALE_SECONDS has lost its worker and is run again as a new attempt.
QUORUM_JOB_HEARTBEAT_SECONDS = env.int("QUORUM_JOB_HEARTBEAT_SECONDS", default=15)
QUORUM_JOB_STALE_SECONDS = env.int("QUORUM_JOB_STALE_SECONDS", default=90)

MLFLOW_TRACKING_URI = env(
    "MLFLOW_TRACKING_URI", default=f"sqlite:///{VAR_DIR / 'mlflow' / 'mlflow.db'}"
)
# Shared with MLflow's webhook (manage.py register_mlflow_webhook); empty turns webhooks off.
MLFLOW_WEBHOOK_SECRET = env("MLFLOW_WEBHOOK_SECRET", default="")
MLFLOW_ARTIFACT_ROOT = env("MLFLOW_ARTIFACT_ROOT", default=str(VAR_DIR / "mlflow" / "artifacts"))

# Email: files under var/mail unless EMAIL_URL names an SMTP server (smtp://, smtp+tls://).
_email = env.email_url("EMAIL_URL", default="filemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
EMAIL_TIMEOUT = 10
EMAIL_FILE_PATH = str(VAR_DIR / "mail")
# Where people reach the site: the links in emails are made from it.
QUORUM_BASE_URL = env("QUORUM_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Quorum <quorum@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24

# Lock a username out from one address after repeated failed sign-ins.
AXES_FAILURE_LIMIT = env.int("QUORUM_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# django-guardian: anonymous users hold no object permissions.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

# Rate limits per client address: (attempts, window in seconds). Failed API token
# authentications (a guess), and deliveries to the webhook endpoints.
QUORUM_RATE_LIMITS = {
    "token_failures": (env.int("QUORUM_TOKEN_FAILURE_LIMIT", default=20), 60),
    "webhooks": (env.int("QUORUM_WEBHOOK_LIMIT", default=300), 60),
}

REST_FRAMEWORK = {
    # Bearer first: a 401 then names the scheme a client should use.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "dashboard.api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "dashboard.api.auth.CiTokenScope",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "dashboard.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "dashboard.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Quorum API",
    "DESCRIPTION": "Projects, members and model governance. Authenticate with "
    "`Authorization: Bearer <token>` (tokens are made on your profile page) or a session.",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        # Named as they were before other areas' fields of the same names came along.
        "KindEnum": "governance.notify.kinds.Kind",
        "StateEnum": "governance.monitoring.models.QualityState",
        "TargetKindEnum": "governance.delivery.models.Target.Kind",
        "DeploymentStateEnum": "governance.delivery.models.Deployment.State",
        "DeploymentHealthEnum": "governance.delivery.models.Deployment.Health",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "dashboard.api.errors.document_errors",
    ],
}

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "dashboard.staticfiles.VendorFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"
# Data sets registered in Quorum: the largest accepted, and the folders file:// URIs may name.
QUORUM_MAX_DATASET_BYTES = env.int("QUORUM_MAX_DATASET_MB", default=512) * 2**20
# Where package jobs push the images they build (such as registry.example.com/ml), when a Docker
# engine is configured (DOCKER_HOST or its socket); empty keeps images on the engine.
QUORUM_IMAGE_REGISTRY = env("QUORUM_IMAGE_REGISTRY", default="")
QUORUM_DATA_ROOTS = env.list("QUORUM_DATA_ROOTS", default=[])
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 2**20
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 2**20
# Audit exports are written here, then streamed and deleted.
EXPORT_DIR = Path(env("QUORUM_EXPORT_DIR", default=str(VAR_DIR / "exports")))
# Tables Quorum keeps (references, batches), as Parquet named by their SHA-256.
DATA_DIR = Path(env("QUORUM_DATA_DIR", default=str(VAR_DIR / "data")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # it logs every sign-in; the audit trail keeps those
    },
}
