"""Design (d): the project's own ASGI application with persistence switched off.

The benchmark starts ``config.asgi:application`` with ``CHAT_HANDOFF_PUBLISHER`` naming
``publish_nowhere``: everything a socket does is unchanged (session identity, validation,
fan-out, micro-batched hand-off, ``message.accepted``) except that batches go nowhere.
What it delivers is the ceiling of the server and the channel layer: design (c) is
measured against it. Benchmark only: a project that runs this loses every message.
"""


def publish_nowhere(records: list[dict]) -> None:
    """Accept the batch without handing it to anyone."""
