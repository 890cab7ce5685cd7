"""Settings for {{ cookiecutter.project_name }}, all read from the environment here.

A ``.env`` file in the project root may supply variables; real environment variables win.
The defaults work on a developer machine with PostgreSQL and Redis on localhost.
"""

import ipaddress
import os
from pathlib import Path

import environ

from config import redis_connection
from config.connections import ConnectionBudget, RedisBudget, pool_options, redis_client_name
from config.roles import PROJECT_SLUG, Role, application_name

BASE_DIR = Path(__file__).resolve().parent.parent


class Env(environ.Env):
    """The environment, with ``.env``'s values for variables it does not set. A copy:
    reading the settings never changes the process's own environment."""

    ENVIRON = dict(os.environ)


env = Env()
env.read_env(BASE_DIR / ".env", overwrite=False)

# Each entry point (manage.py, config/asgi.py, config/celery.py) declares what it is, so
# that pool sizes and the name shown in pg_stat_activity follow the process's job.
try:
    PROCESS_ROLE = Role(env("PROCESS_ROLE", default=Role.MANAGE))
except ValueError:
    raise environ.ImproperlyConfigured(
        f"PROCESS_ROLE must be one of {[str(role) for role in Role]}, not {env('PROCESS_ROLE')!r}"
    ) from None

# Without a SECRET_KEY the development key below stands in; with DEBUG off, the system check
# ops.E002 (ops/checks.py) refuses it, and any short or published key: manage.py and the
# ASGI server (config/asgi.py) then do not start. Receipts and sessions are signed with it.
DEVELOPMENT_SECRET_KEY = "insecure-dev-key-change-me-in-production"
SECRET_KEY = env("SECRET_KEY", default="") or DEVELOPMENT_SECRET_KEY
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
    "django.contrib.admin",
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
    "ops.csp.ContentSecurityPolicyMiddleware",
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
        # The web role's pool tests a connection before lending it: a PostgreSQL restart
        # costs a reconnect, not a failed request. The worker's does not: the test is a
        # round trip per batch (a tenth of a 20-message batch's time, py-spy), and a batch
        # that meets a connection the restart broke fails, is retried (chat.tasks), and
        # the pool replaces the connection when the task hands it back (config/celery.py).
        "CONN_HEALTH_CHECKS": PROCESS_ROLE != Role.WORKER,
        "OPTIONS": {
            "application_name": application_name(PROCESS_ROLE),
            "pool": pool_options(
                CONNECTION_BUDGET,
                PROCESS_ROLE,
                timeout=env.float("DB_POOL_TIMEOUT", default=10),
                reconnect_timeout=env.float("DB_POOL_RECONNECT_TIMEOUT", default=5),
            ),
        },
    }
)
# With a transaction-mode pooler (pgbouncer) in front of PostgreSQL, the long-running roles
# go through it. Migrations and management commands go straight to PostgreSQL: they may
# need session state (advisory locks, server-side cursors) that transaction pooling drops.
PGBOUNCER_URL = env("PGBOUNCER_URL", default="")
if PGBOUNCER_URL and PROCESS_ROLE in (Role.WEB, Role.WORKER):
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
        # Each pool's connections name themselves (CLIENT LIST shows whose each one is).
        "OPTIONS": {"client_name": redis_client_name("cache")},
    }
}
# Sessions live in Redis (Django's cache), each with the identity record the WebSocket
# handshake authenticates from, kept in step by the project's session engine (chat/sessions.py).
SESSION_ENGINE = "chat.sessions"
# The project's own Redis clients (chat/redis_store.py): how long one command may take, and
# a bounded pool per process (a command waits up to REDIS_POOL_TIMEOUT for a connection).
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=5)
REDIS_POOL_SIZE = env.int("REDIS_POOL_SIZE", default=20)
REDIS_POOL_TIMEOUT = env.float("REDIS_POOL_TIMEOUT", default=5)

# Past one Redis, list several: the layer shards channels and groups over them by hash
# (docs/scaling.md). Every process must be given the same list, in the same order.
CHANNEL_LAYER_URLS = env.list("CHANNEL_LAYER_URLS", default=[REDIS_URL])
# The project was generated with one layer; CHANNEL_LAYER switches to the other without a
# code change (the benchmark measures both). Both are channels_redis's, with what the project
# adds (config/channel_layer.py).
CHANNEL_LAYER_BACKENDS = {
    "redis": "config.channel_layer.BoundedRedisChannelLayer",
    "redis_pubsub": "config.channel_layer.PipelinedPubSubChannelLayer",
}
CHANNEL_LAYER = env("CHANNEL_LAYER", default="{{ cookiecutter.channel_layer }}")
if CHANNEL_LAYER not in CHANNEL_LAYER_BACKENDS:
    raise environ.ImproperlyConfigured(
        f"CHANNEL_LAYER must be one of {sorted(CHANNEL_LAYER_BACKENDS)}, not {CHANNEL_LAYER!r}"
    )
# The layer's Redis connections per event loop and shard. The core layer's pool waits up to
# CHANNEL_LAYER_POOL_TIMEOUT for one when they are all busy (config/channel_layer.py). The
# pub/sub layer's pool would raise "Too many connections" instead, but never needs more than
# two: one subscribed, and one for the shard's commands, which the library runs one at a
# time under a lock (tests/test_redis_budget.py holds it to that).
CHANNEL_LAYER_MAX_CONNECTIONS = env.int(
    "CHANNEL_LAYER_MAX_CONNECTIONS", default=20 if CHANNEL_LAYER == "redis" else 2
)
CHANNEL_LAYER_POOL_TIMEOUT = env.float("CHANNEL_LAYER_POOL_TIMEOUT", default=5)
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
                    # Per event loop and shard, whatever the number of sockets.
                    "max_connections": CHANNEL_LAYER_MAX_CONNECTIONS,
                    "client_name": redis_client_name("layer"),
                    # A task cancelled mid-command stays cancelled (config/redis_connection.py).
                    "connection_class": redis_connection.connection_class(url),
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
# Redis (the default) or RabbitMQ (amqp://): docs/scaling.md says when to pick which. The
# transport options below follow the URL's scheme, so switching is one variable.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
BROKER_IS_AMQP = CELERY_BROKER_URL.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")
# A plain redis:// broker goes through kombu's Redis transport keeping one client per channel
# (config/broker_transport.py says why); other schemes keep kombu's own transport, whose TLS
# defaults follow the scheme.
CELERY_BROKER_TRANSPORT = (
    "config.broker_transport:Transport" if CELERY_BROKER_URL.startswith("redis://") else None
)
# Broker connections each process keeps for publishing (Celery's default); the Redis budget
# below counts them. Publishes go out one at a time from the hand-off thread, so one is busy.
CELERY_BROKER_POOL_LIMIT = env.int("CELERY_BROKER_POOL_LIMIT", default=10)
# No result backend: nothing waits on a task's result, so no Redis clients for one.
# The Redis budget: every process's pools, summed per server and checked against maxclients
# (ops/checks.py, `manage.py preflight`), as the PostgreSQL budget is against max_connections.
REDIS_BUDGET = RedisBudget(
    processes=CONNECTION_BUDGET,
    store_url=REDIS_URL,
    store_pool_size=REDIS_POOL_SIZE,
    layer_urls=tuple(CHANNEL_LAYER_URLS),
    layer_pool_size=CHANNEL_LAYER_MAX_CONNECTIONS,
    broker_url=None if BROKER_IS_AMQP else CELERY_BROKER_URL,
    broker_pool_limit=CELERY_BROKER_POOL_LIMIT,
    reserve=env.int("REDIS_RESERVED_CLIENTS", default=10),
)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ROUTES = {
    "chat.persist_messages": {"queue": "persist"},
    "chat.rebuild_room_mirror": {"queue": "persist"},
    "chat.seed_offsets": {"queue": "persist"},
}
# At-least-once: a batch is acknowledged only after it is committed, and redelivered if the
# worker dies holding it. Storage is idempotent, so a redelivery never stores twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = CONNECTION_BUDGET.worker_processes
# How fast a killed worker's batches are stored again (docs/operations.md, "Worker killed").
# The Redis transport keeps every batch a worker holds in an "unacked" index, scored with the
# time it was taken; any worker puts back on the queue the batches older than the visibility
# timeout, every restore interval. So a dead worker's batch waits at most
# VISIBILITY_TIMEOUT + RESTORE_INTERVAL, then a few milliseconds of storing: 11 s by default.
# The same rule redelivers a batch that is merely slow. Storage is idempotent (INSERT ... ON
# CONFLICT DO NOTHING on (author, id)) and nothing relies on batches being stored in order
# (offsets are assigned before the hand-off), so a second copy is harmless; it is still
# avoided, by bounding how long a worker may hold a batch below the visibility timeout:
# - a run is interrupted after CHAT_PERSIST_SOFT_TIME_LIMIT (it retries, chat/tasks.py) and
#   its child killed after CHAT_PERSIST_TIME_LIMIT (the batch goes straight back: acks on
#   timeout off), both far above a batch's normal tens of milliseconds;
# - a retry waits in the worker, held unacknowledged, for at most CHAT_PERSIST_RETRY_MAX
#   seconds before it runs: wait + hard limit stay below the visibility timeout.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=10)
CHAT_PERSIST_TIME_LIMIT = env.int("CHAT_PERSIST_TIME_LIMIT", default=5)
CHAT_PERSIST_SOFT_TIME_LIMIT = env.int("CHAT_PERSIST_SOFT_TIME_LIMIT", default=4)
CELERY_TASK_ACKS_ON_TIMEOUT = False
CHAT_PERSIST_RETRY_MAX = env.int("CHAT_PERSIST_RETRY_MAX", default=4)
if CHAT_PERSIST_RETRY_MAX + CHAT_PERSIST_TIME_LIMIT >= CELERY_VISIBILITY_TIMEOUT:
    raise environ.ImproperlyConfigured(
        "CHAT_PERSIST_RETRY_MAX + CHAT_PERSIST_TIME_LIMIT must stay below "
        "CELERY_VISIBILITY_TIMEOUT, or batches still in a worker's hands are redelivered"
    )
# A worker child stores the batches queued behind its own with it, up to this many messages
# in one statement (chat.queued): catching up on a backlog of small batches went 1 task at a
# time before, at a few percent of what PostgreSQL takes (docs/benchmark.md). 0: one at a time.
CHAT_PERSIST_GATHER = env.int("CHAT_PERSIST_GATHER", default=1000)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # Left alone, kombu scans only on every 10th 10-second tick (throttle 10). One scan a
    # second per worker is one ZRANGE, under a mutex so that workers take turns.
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=1),
    "unacked_restore_throttle": 1,
    # The scan's mutex outlives a worker killed while holding it by this many seconds
    # (kombu's default, 300 s, would stop every restore for five minutes). Restoring is
    # a transaction per batch, so two scans overlapping restore nothing twice.
    "unacked_mutex_expire": CELERY_VISIBILITY_TIMEOUT,
    # A broker that vanished without closing the TCP connection (failover, NAT, firewall)
    # answers nothing: without these, a publish waits on the half-open socket for as long as
    # the kernel keeps it, minutes, and the hand-off's one thread with it (chat/handoff.py).
    "socket_connect_timeout": env.float("CELERY_BROKER_CONNECT_TIMEOUT", default=2),
    "socket_timeout": env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=3),
    "client_name": redis_client_name("broker"),
}
# The ASGI process publishes on the event loop's side thread: fail fast when the broker is
# down, so that the sender hears "unavailable" instead of waiting.
CELERY_BROKER_CONNECTION_TIMEOUT = CELERY_BROKER_TRANSPORT_OPTIONS["socket_connect_timeout"]
if BROKER_IS_AMQP:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Publisher confirms: a publish returns once RabbitMQ has the batch in the queue
        # (replicated, for the quorum queue of config/celery.py), so "message.accepted"
        # follows the broker's own word. A dead worker's unacknowledged batches go back to
        # the queue the moment its connection drops: no visibility timeout to wait out.
        "confirm_publish": True,
        "connect_timeout": CELERY_BROKER_TRANSPORT_OPTIONS["socket_connect_timeout"],
        "read_timeout": CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"],
        "write_timeout": CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"],
    }
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}

# --- The chat protocol (../docs/protocol.md) ---------------------------------------------
CHAT_MAX_BODY = env.int("CHAT_MAX_BODY", default=4000)
CHAT_MAX_FRAME_BYTES = env.int("CHAT_MAX_FRAME_BYTES", default=64 * 1024)
# Hand-off micro-batching: one Celery task per batch, flushed on size or delay, published
# by this function (chat/handoff.py). The delay is how much later a sender hears
# "accepted"; the room sees the message at once either way. Each batch costs a publish in
# the ASGI process and a task in the worker: at 100 msgs/s, 25 ms rather than 5 halved the
# worker's CPU and cut the ASGI process's by a sixth (docs/benchmark.md).
CHAT_HANDOFF_PUBLISHER = env("CHAT_HANDOFF_PUBLISHER", default="chat.queue.publish")
CHAT_HANDOFF_MAX_BATCH = env.int("CHAT_HANDOFF_MAX_BATCH", default=200)
CHAT_HANDOFF_MAX_DELAY = env.float("CHAT_HANDOFF_MAX_DELAY_MS", default=25) / 1000
# A batch not published within this many seconds answers its senders "unavailable", whatever
# holds the publish up. The broker's socket timeouts above free the publishing thread; this
# bounds what a sender waits even if something else blocks it. Above the worst case of the
# timeouts and the retry policy (3 attempts of connect + socket timeout), so that normally
# the publish itself fails first.
CHAT_HANDOFF_TIMEOUT = env.float("CHAT_HANDOFF_TIMEOUT", default=20)
CHAT_RECEIPT_MAX_AGE = env.int("CHAT_RECEIPT_MAX_AGE", default=24 * 3600)
# An id belongs to its first author (chat/claims.py): the claim in Redis outlives every way
# the message can still be unstored (the pending store keeps it CHAT_RECEIPT_MAX_AGE), after
# which storage alone refuses another author's use of the id (chat/persistence.py).
CHAT_ID_CLAIM_TTL = env.int("CHAT_ID_CLAIM_TTL", default=CHAT_RECEIPT_MAX_AGE)
# Accepted messages still unstored this many seconds after their batch was published, and
# held by the broker neither in the queue nor unacknowledged, are handed to the queue again
# (chat/sweep.py): the batches a worker killed mid-delivery lost (celery/kombu#305). Longer
# than a batch takes from publish to a worker's hands; short, as it bounds how soon such a
# loss is repaired (within 15 s of a worker's death, docs/operations.md). The worker looks
# every INTERVAL seconds. RabbitMQ confirms every batch it takes and hands a dead worker's
# back at once, and what its workers hold cannot be read (chat/unacked.py): there the sweep
# only repairs what the broker never had, so it waits far longer than any batch takes, or
# it would hand over again every batch still queued or being stored.
CHAT_PENDING_SWEEP_AFTER = env.float(
    "CHAT_PENDING_SWEEP_AFTER", default=300 if BROKER_IS_AMQP else 5
)
CHAT_PENDING_SWEEP_INTERVAL = env.float("CHAT_PENDING_SWEEP_INTERVAL", default=2)
# Per connection: a burst of CHAT_RATE_BURST frames, then CHAT_RATE_LIMIT per second; past
# CHAT_RATE_MAX_STRIKES refusals in a row the socket is closed with 4429.
CHAT_RATE_LIMIT = env.float("CHAT_RATE_LIMIT", default=20)
CHAT_RATE_BURST = env.int("CHAT_RATE_BURST", default=40)
CHAT_RATE_MAX_STRIKES = env.int("CHAT_RATE_MAX_STRIKES", default=20)
# Per user, across all their sockets and processes (chat/user_budget.py): messages and
# bytes of message bodies per second; past either, messages are refused with rate_limited.
CHAT_USER_MESSAGES_PER_SECOND = env.int("CHAT_USER_MESSAGES_PER_SECOND", default=30)
CHAT_USER_BYTES_PER_SECOND = env.int("CHAT_USER_BYTES_PER_SECOND", default=64 * 1024)
# Per socket: frames the server could not send yet (chat/outbox.py). A client that falls
# further behind is closed with 4408: memory per socket stays under these (plus the ASGI
# server's own 64 KiB buffer), whatever its client does.
CHAT_SEND_BACKLOG_FRAMES = env.int("CHAT_SEND_BACKLOG_FRAMES", default=500)
CHAT_SEND_BACKLOG_BYTES = env.int("CHAT_SEND_BACKLOG_BYTES", default=512 * 1024)
# Sockets one user may hold at once, across processes; one more is closed with 4409. A slot
# of a process that died frees itself CHAT_SOCKET_SLOT_TTL seconds later.
CHAT_MAX_SOCKETS_PER_USER = env.int("CHAT_MAX_SOCKETS_PER_USER", default=20)
CHAT_SOCKET_SLOT_TTL = env.float("CHAT_SOCKET_SLOT_TTL", default=60)
# Exact recovery (chat/offsets.py): each room's latest messages stay in Redis, whether
# the worker has stored them or not, for clients that reconnect with after_offset=.
CHAT_RECENT_WINDOW = env.int("CHAT_RECENT_WINDOW", default=1000)  # messages per room
CHAT_RECENT_SECONDS = env.int("CHAT_RECENT_SECONDS", default=3600)  # after its last one
# Presence (chat/presence.py): each process renews its sockets' entries every third of
# this; the users of a process that died leave the room at most this long (plus a third)
# after its last renewal.
CHAT_PRESENCE_TTL = env.float("CHAT_PRESENCE_TTL", default=30)
# Typing: at most one "typing" event per socket this often (seconds); more are dropped.
CHAT_TYPING_INTERVAL = env.float("CHAT_TYPING_INTERVAL", default=1.0)

# --- Who may connect (docs/protocol.md: access, revocation, tickets) ----------------------
# WebSocket tickets for non-browser clients: single-use, valid this many seconds (1..60),
# at most CHAT_TICKETS_PER_MINUTE issued per user.
CHAT_TICKET_TTL = env.int("CHAT_TICKET_TTL", default=30)
if not 1 <= CHAT_TICKET_TTL <= 60:
    raise environ.ImproperlyConfigured(
        f"CHAT_TICKET_TTL must be 1..60 seconds, not {CHAT_TICKET_TTL}"
    )
CHAT_TICKETS_PER_MINUTE = env.int("CHAT_TICKETS_PER_MINUTE", default=30)
# The room mirror in Redis (chat/access.py): the worker checks it this often, pushing back its
# expiry or, if it is gone, rebuilding it from PostgreSQL. Joins are refused while it is gone.
CHAT_ROOM_MIRROR_CHECK_INTERVAL = env.float("CHAT_ROOM_MIRROR_CHECK_INTERVAL", default=10)
CHAT_ROOM_MIRROR_TTL = env.int("CHAT_ROOM_MIRROR_TTL", default=7 * 24 * 3600)

# --- Auth, static files, i18n ------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
# Failed logins allowed per username and per client address in each window (chat/forms.py).
LOGIN_FAILURE_LIMIT_PER_USER = env.int("LOGIN_FAILURE_LIMIT_PER_USER", default=10)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = env.int("LOGIN_FAILURE_LIMIT_PER_ADDRESS", default=100)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=15 * 60)
# Error pages and reports hide connection strings too: they carry passwords (ops/reporting.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "ops.reporting.ExceptionReporterFilter"
# CSRF failures of the JSON API answer JSON (chat/api.py).
CSRF_FAILURE_VIEW = "chat.api.csrf_failure"
# Every response carries this Content-Security-Policy (ops/csp.py): the pages load scripts
# and styles from this site only, and run no inline script.
CONTENT_SECURITY_POLICY = env(
    "CONTENT_SECURITY_POLICY",
    default="default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
)
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
# Each dependency /readyz checks gets this long to answer; an answer is reused this long, so
# that probes (or anyone) calling in a loop cost the dependencies one check per period.
READINESS_TIMEOUT = env.float("READINESS_TIMEOUT", default=2)
READINESS_CACHE_SECONDS = env.float("READINESS_CACHE_SECONDS", default=1)
# /metrics answers only these client addresses (or networks, e.g. 10.0.0.0/8), or a request
# with "Authorization: Bearer <METRICS_TOKEN>"; everyone else gets a 404. Neither set: off.
METRICS_ALLOWED_IPS = [
    ipaddress.ip_network(address, strict=False)
    for address in env.list("METRICS_ALLOWED_IPS", default=[])
]
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# The worker serves its metrics on this port (0: not at all); config/celery.py sets up the
# directory its prefork children count in.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
