"""The project's system checks.

``manage.py check --database default``: does the connection budget fit the server? The
budget (``config.connections``) is what every process of the project can hold at once. If it
exceeds ``max_connections``, the day all processes are busy is the day PostgreSQL answers
"sorry, too many clients already". This check says so before that day.

``redis_budget_fits_servers``: the same for Redis, per server, against ``maxclients``.

``secret_key_is_real``: no production process starts with a SECRET_KEY anyone can know.
"""

import redis
from django.conf import settings
from django.core import checks
from django.db import connections

WARN_ABOVE = 0.8


@checks.register(checks.Tags.database)
def connection_budget_fits_server(databases=None, **kwargs):
    if not databases or "default" not in databases:
        return []
    budget = settings.CONNECTION_BUDGET
    with connections["default"].cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
    arithmetic = (
        f"{budget.web_processes} web process(es) x {budget.web_pool_size} + "
        f"{budget.worker_processes} worker process(es) x {budget.worker_pool_size} + "
        f"{budget.reserve} reserved = {budget.total} connections, "
        f"server max_connections = {max_connections}"
    )
    hint = (
        "Lower WEB_CONCURRENCY, WEB_POOL_MAX_SIZE, WORKER_CONCURRENCY or WORKER_POOL_MAX_SIZE, "
        "put pgbouncer in front of PostgreSQL, or raise max_connections."
    )
    if budget.total > max_connections:
        return [
            checks.Error(
                f"Connection budget exceeds the server: {arithmetic}.", hint=hint, id="ops.E001"
            )
        ]
    if budget.total > WARN_ABOVE * max_connections:
        return [
            checks.Warning(
                f"Connection budget above {WARN_ABOVE:.0%} of the server: {arithmetic}.",
                hint=hint,
                id="ops.W001",
            )
        ]
    return []


def redis_client(url: str) -> redis.Redis:
    """A short-lived client for a check: it fails fast rather than hang a deploy."""
    return redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)


def redis_maxclients(client: redis.Redis) -> int | None:
    """The server's ``maxclients``: from CONFIG GET, or, where CONFIG is renamed away (as
    managed Redis services do), from INFO; None if neither tells."""
    try:
        value = client.config_get("maxclients").get("maxclients")
    except redis.ResponseError:  # "unknown command": CONFIG renamed away
        value = client.info("clients").get("maxclients")
    return None if value is None else int(value)


@checks.register(checks.Tags.database)
def redis_budget_fits_servers(databases=None, **kwargs):
    """The Redis side of the budget: per Redis server, every role's pools against the
    server's ``maxclients`` (``config.connections.RedisBudget``). Past it, Redis refuses
    new clients ("max number of clients reached"): every socket on that process hears
    ``unavailable`` until a connection frees. Runs with the database checks (``migrate``,
    ``check --database default``) and in ``manage.py preflight``."""
    if not databases:
        return []
    budget = settings.REDIS_BUDGET
    hint = (
        "Lower WEB_CONCURRENCY, WORKER_CONCURRENCY, REDIS_POOL_SIZE, "
        "CHANNEL_LAYER_MAX_CONNECTIONS or CELERY_BROKER_POOL_LIMIT, give the roles Redis "
        "servers of their own (REDIS_URL, CHANNEL_LAYER_URLS, CELERY_BROKER_URL), or raise "
        "the server's maxclients."
    )
    found: list[checks.CheckMessage] = []
    shares_by_server = budget.shares()
    for server, url in budget.server_urls().items():
        roles = shares_by_server[server]
        total = sum(roles.values())
        shares = " + ".join(f"{role} {held}" for role, held in roles.items() if held)
        client = redis_client(url)
        try:
            maxclients = redis_maxclients(client)
        except redis.RedisError as exc:
            maxclients, why = None, f"it did not answer ({exc})"
        else:
            why = "neither CONFIG GET nor INFO gives maxclients"
        finally:
            client.close()
        if maxclients is None:
            found.append(
                checks.Warning(
                    f"Redis budget not checked at {server}: {why}; it needs {total} clients "
                    f"({shares}).",
                    hint="Check the server's maxclients by hand against that figure.",
                    id="ops.W003",
                )
            )
            continue
        arithmetic = f"{shares} = {total} clients, server maxclients = {maxclients}"
        if total > maxclients:
            found.append(
                checks.Error(
                    f"Redis budget exceeds the server at {server}: {arithmetic}.",
                    hint=hint,
                    id="ops.E003",
                )
            )
        elif total > WARN_ABOVE * maxclients:
            found.append(
                checks.Warning(
                    f"Redis budget above {WARN_ABOVE:.0%} of the server at {server}: {arithmetic}.",
                    hint=hint,
                    id="ops.W002",
                )
            )
    return found


# Keys anyone can read: this template's fallback and its .env.example placeholder, and the
# prefix of the keys Django's startproject writes (meant for development only).
KNOWN_SECRET_KEYS = {"insecure-dev-key-change-me-in-production", "change-me"}
KNOWN_SECRET_KEY_PREFIX = "django-insecure-"
MIN_SECRET_KEY_LENGTH = 50  # as Django's security.W009
MIN_SECRET_KEY_CHARACTERS = 5


@checks.register(checks.Tags.security)
def secret_key_is_real(**kwargs):
    """An error, not a warning: with DEBUG off, a missing, short or published SECRET_KEY.

    Anyone who knows the key can forge what the project signs: sessions, write receipts.
    Registered without ``deploy=True``, so every ``manage.py`` command refuses it, and the
    ASGI server too (``config/asgi.py`` runs the security checks at start).
    """
    if settings.DEBUG:
        return []
    key = settings.SECRET_KEY
    if key in KNOWN_SECRET_KEYS or key.startswith(KNOWN_SECRET_KEY_PREFIX):
        problem = "is missing or a published value (this template's, or a development key)"
    elif len(key) < MIN_SECRET_KEY_LENGTH or len(set(key)) < MIN_SECRET_KEY_CHARACTERS:
        problem = (
            f"is too short or too plain (at least {MIN_SECRET_KEY_LENGTH} characters, "
            f"{MIN_SECRET_KEY_CHARACTERS} different ones)"
        )
    else:
        return []
    return [
        checks.Error(
            f"SECRET_KEY {problem}, and DEBUG is off.",
            hint='Set SECRET_KEY in the environment, e.g. from python -c "import secrets; '
            'print(secrets.token_urlsafe(50))".',
            id="ops.E002",
        )
    ]
