"""The project's Prometheus metrics, defined once, counted where things happen.

Counting is an in-memory increment under a lock, cheap enough for the WebSocket hot path,
and this module imports nothing from the database side (the import-linter contract in
pyproject.toml covers it, since the consumers import it). Exposition lives elsewhere:
``ops.views.metrics`` for the web process, ``ops.worker_metrics`` for the Celery worker.

Names follow Prometheus conventions: ``_total`` for counters, base units (seconds).
"""

from prometheus_client import Counter, Gauge, Histogram

# --- The WebSocket side (web role) -----------------------------------------------------
SOCKETS_CONNECTED = Gauge(
    "chat_sockets_connected", "WebSockets open on this process.", multiprocess_mode="livesum"
)
FRAMES_RECEIVED = Counter("chat_frames_received", "WebSocket frames received from clients.")
FRAMES_SENT = Counter("chat_frames_sent", "WebSocket frames sent to clients.")
FRAME_FAILURES = Counter(
    "chat_frame_failures",
    "Client frames the consumer failed on (answered invalid_frame; a bug to look into).",
)
SLOW_CLIENTS_CLOSED = Counter(
    "chat_slow_clients_closed",
    "Sockets closed with 4408: their client read slower than the room talked (chat.outbox).",
)
USER_BUDGET_REFUSALS = Counter(
    "chat_user_budget_refusals",
    "Messages refused (rate_limited) because their user was over the per-user budget.",
)
MESSAGES_ACCEPTED = Counter(
    "chat_messages_accepted", "Messages handed to the persistence queue (message.accepted)."
)
HANDOFF_FAILURES = Counter(
    "chat_handoff_failed_messages", "Messages the broker did not take (sender heard unavailable)."
)
ID_CONFLICTS = Counter(
    "chat_id_conflicts",
    "Messages sent under another user's id, refused by its claim (id_conflict).",
)
HANDOFF_BATCH_SIZE = Histogram(
    "chat_handoff_batch_size",
    "Messages per batch published to the persistence queue.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
HANDOFF_SECONDS = Histogram(
    "chat_handoff_publish_seconds",
    "Time to publish one batch to the broker.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

# --- The persistence side (worker role) ------------------------------------------------
MESSAGES_PERSISTED = Counter("chat_messages_persisted", "Messages committed to PostgreSQL.")
PERSIST_LAG_SECONDS = Histogram(
    "chat_persist_lag_seconds",
    "From a message's sent_at (set by the ASGI process) to its commit in PostgreSQL.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
DEAD_LETTERS = Counter("chat_dead_letters", "Records PostgreSQL refused, parked in DeadLetter.")

# --- Connection pools, per process role ------------------------------------------------
POOL_CONNECTIONS = Gauge(
    "db_pool_connections",
    "Connections currently held by this process's PostgreSQL pool (open, lent or idle).",
    ["role"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "db_pool_requests_waiting",
    "Requests waiting for a connection from this process's pool.",
    ["role"],
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "db_pool_max_size",
    "The most connections this process's pool may open (config/pool.py).",
    ["role"],
    multiprocess_mode="livesum",
)
