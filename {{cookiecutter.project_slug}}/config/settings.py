"""Settings for {{ cookiecutter.project_name }}, all read from the environment here.

A ``.env`` file in the project root may supply variables; real environment variables win.
The defaults work on a developer machine with PostgreSQL and Redis on localhost.
"""

import os
import tempfile
from pathlib import Path

import environ

from config.pool import ROLES, ConnectionBudget, pool_options

BASE_DIR = Path(__file__).resolve().parent.parent
PROJECT_SLUG = "{{ cookiecutter.project_slug }}"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Each entry point (manage.py, config/asgi.py, config/celery.py) declares what it is, so
# that pool sizes and the name shown in pg_stat_activity follow the process's job.
PROCESS_ROLE = os.environ.get("PROCESS_ROLE", "manage")
if PROCESS_ROLE not in ROLES:
    raise environ.ImproperlyConfigured(f"PROCESS_ROLE must be one of {ROLES}, not {PROCESS_ROLE!r}")

SECRET_KEY = env("SECRET_KEY", default="insecure-dev-key-change-me-in-production")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS in production: HTTPS=true turns every setting below on (each can be overridden).
# With these, DEBUG=false, a strong SECRET_KEY and real ALLOWED_HOSTS, `manage.py check
# --deploy` reports nothing (docs/operations.md). HSTS preload is a promise to browsers
# that the whole domain is HTTPS for good: set SECURE_HSTS_PRELOAD=false until it is.
HTTPS = env.bool("HTTPS", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=HTTPS)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)
# Behind a proxy that terminates TLS, the header it sets, e.g. "HTTP_X_FORWARDED_PROTO".
if proxy_header := env("SECURE_PROXY_SSL_HEADER", default=""):
    SECURE_PROXY_SSL_HEADER = (proxy_header, "https")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "chat",
    "ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
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

# --- PostgreSQL: one bounded pool per process, sized by role -------------------------------
CONNECTION_BUDGET = ConnectionBudget(
    web_processes=env.int("WEB_CONCURRENCY", default=1),
    web_pool_size=env.int("WEB_POOL_MAX_SIZE", default=4),
    worker_processes=env.int("WORKER_CONCURRENCY", default=2),
    worker_pool_size=env.int("WORKER_POOL_MAX_SIZE", default=1),
    manage_pool_size=env.int("MANAGE_POOL_MAX_SIZE", default=2),
    reserve=env.int("DB_RESERVED_CONNECTIONS", default=3),
)
DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"postgres://postgres@127.0.0.1:5432/{PROJECT_SLUG}"
    )
}
DATABASES["default"].update(
    {
        "ENGINE": "django.db.backends.postgresql",
        "CONN_MAX_AGE": 0,  # the pool, not Django, keeps connections open
        # The pool tests a connection before lending it: a PostgreSQL restart costs a
        # reconnect, not a failed batch.
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "application_name": f"{PROJECT_SLUG}:{PROCESS_ROLE}",
            "pool": pool_options(
                CONNECTION_BUDGET, PROCESS_ROLE, timeout=env.float("DB_POOL_TIMEOUT", default=10)
            ),
        },
    }
)
# With a transaction-mode pooler (pgbouncer) in front of PostgreSQL, the long-running roles
# go through it. Migrations and management commands go straight to PostgreSQL: they may
# need session state (advisory locks, server-side cursors) that transaction pooling drops.
PGBOUNCER_URL = env("PGBOUNCER_URL", default="")
if PGBOUNCER_URL and PROCESS_ROLE in ("web", "worker"):
    pgbouncer = env.db_url_config(PGBOUNCER_URL)
    DATABASES["default"].update(
        HOST=pgbouncer["HOST"], PORT=pgbouncer["PORT"], DISABLE_SERVER_SIDE_CURSORS=True
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache (and so sessions), channel layer and Celery broker -----------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": PROJECT_SLUG,
    }
}
# Sessions live in Redis so that the WebSocket handshake can authenticate without a query.
SESSION_ENGINE = "django.contrib.sessions.backends.cache"

# Past one Redis, list several: the layer shards channels and groups over them by hash
# (docs/scaling.md). Every process must be given the same list, in the same order.
CHANNEL_LAYER_URLS = env.list("CHANNEL_LAYER_URLS", default=[REDIS_URL])
# The project was generated with one layer; CHANNEL_LAYER switches to the other without a
# code change (the benchmark measures both).
CHANNEL_LAYER_BACKENDS = {
    "redis": "channels_redis.core.RedisChannelLayer",
    "redis_pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
CHANNEL_LAYER = env("CHANNEL_LAYER", default="{{ cookiecutter.channel_layer }}")
if CHANNEL_LAYER not in CHANNEL_LAYER_BACKENDS:
    raise environ.ImproperlyConfigured(
        f"CHANNEL_LAYER must be one of {sorted(CHANNEL_LAYER_BACKENDS)}, not {CHANNEL_LAYER!r}"
    )
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": CHANNEL_LAYER_BACKENDS[CHANNEL_LAYER],
        "CONFIG": {
            "hosts": [
                {
                    "address": url,
                    # redis-py 8 times reads out after 5 s by default, exactly as long as the
                    # layer's blocking pop waits (django/channels_redis#422): give it more.
                    "socket_timeout": 10,
                    # ...and caps a pool at 100 connections, raising "Too many connections"
                    # past that instead of waiting. The layer holds one per command in flight,
                    # so a burst from a few hundred sockets needs more.
                    "max_connections": env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=1000),
                }
                for url in CHANNEL_LAYER_URLS
            ],
            # Pub/sub channels ignore Redis database numbers: the prefix keeps projects apart.
            "prefix": env("CHANNEL_LAYER_PREFIX", default=PROJECT_SLUG),
            # The core layer queues everything bound for one ASGI process in one Redis list,
            # and past this length drops group messages silently: size it for bursts of the
            # whole process, not of one socket. (The pub/sub layer has no such queue.)
            "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=5000),
        },
    }
}

# --- Celery: the persistence worker ------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ROUTES = {"chat.persist_messages": {"queue": "persist"}}
# At-least-once: a batch is acknowledged only after it is committed, and redelivered if the
# worker dies holding it. Storage is idempotent, so a redelivery never stores twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = CONNECTION_BUDGET.worker_processes
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Unacknowledged batches of a dead worker come back after this many seconds; it must
    # exceed the longest batch (and retry countdown), or a slow batch is delivered twice.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=120),
    # How often a worker looks for such batches, in seconds. Left alone, kombu scans only on
    # every 10th 10-second tick, so a dead worker's batches could wait 100 s past the timeout.
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": 1,
}
# The ASGI process publishes on the event loop's side thread: fail fast when the broker is
# down, so that the sender hears "unavailable" instead of waiting.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}

# --- The chat protocol (../docs/protocol.md) ---------------------------------------------
CHAT_MAX_BODY = env.int("CHAT_MAX_BODY", default=4000)
CHAT_MAX_FRAME_BYTES = env.int("CHAT_MAX_FRAME_BYTES", default=64 * 1024)
# Hand-off micro-batching: one Celery task per batch, flushed on size or delay.
CHAT_HANDOFF_MAX_BATCH = env.int("CHAT_HANDOFF_MAX_BATCH", default=200)
CHAT_HANDOFF_MAX_DELAY = env.float("CHAT_HANDOFF_MAX_DELAY_MS", default=5) / 1000
CHAT_RECEIPT_MAX_AGE = env.int("CHAT_RECEIPT_MAX_AGE", default=24 * 3600)
# Accepted messages still unstored this many seconds after their batch was published are
# handed to the queue again (chat/sweep.py): far longer than any batch takes, so that
# normally only batches the broker lost qualify. The worker looks every INTERVAL seconds.
CHAT_PENDING_SWEEP_AFTER = env.float("CHAT_PENDING_SWEEP_AFTER", default=300)
CHAT_PENDING_SWEEP_INTERVAL = env.float("CHAT_PENDING_SWEEP_INTERVAL", default=30)
# Per connection: a burst of CHAT_RATE_BURST frames, then CHAT_RATE_LIMIT per second; past
# CHAT_RATE_MAX_STRIKES refusals in a row the socket is closed with 4429.
CHAT_RATE_LIMIT = env.float("CHAT_RATE_LIMIT", default=20)
CHAT_RATE_BURST = env.int("CHAT_RATE_BURST", default=40)
CHAT_RATE_MAX_STRIKES = env.int("CHAT_RATE_MAX_STRIKES", default=20)
# Sockets one user may hold at once, across processes; one more is closed with 4409. A slot
# of a process that died frees itself CHAT_SOCKET_SLOT_TTL seconds later.
CHAT_MAX_SOCKETS_PER_USER = env.int("CHAT_MAX_SOCKETS_PER_USER", default=20)
CHAT_SOCKET_SLOT_TTL = env.float("CHAT_SOCKET_SLOT_TTL", default=60)

# --- Auth, static files, i18n ------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_REDIRECT_URL = "/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves static files from the ASGI process itself, whatever the server (daphne
# or uvicorn run the app directly; there is no runserver). It finds them where they live,
# so there is no collectstatic step; with DEBUG it also picks up edits without a restart.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Operations: health checks and Prometheus metrics (docs/ops-tooling.md) --------------
# Each dependency /readyz checks gets this long to answer.
READINESS_TIMEOUT = env.float("READINESS_TIMEOUT", default=2)
# The worker serves its metrics on this port (0: not at all). Celery's prefork children
# count in files under PROMETHEUS_MULTIPROC_DIR, which prometheus-client reads when it is
# imported, so it is set here, before anything imports it, for the worker role only.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
if PROCESS_ROLE == "worker" and WORKER_METRICS_PORT:
    os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix=f"{PROJECT_SLUG}-metrics-")
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
