"""Design (d): the project's own ASGI application with persistence switched off.

Everything a socket does is unchanged (session identity, validation, fan-out, micro-batched
hand-off, ``message.accepted``) except that batches are not published to the broker. What
it delivers is the ceiling of the server and the channel layer: design (c) is measured
against it. Benchmark only: a project that runs this loses every message.
"""

from chat.handoff import handoff
from config.asgi import application


def publish_nowhere(records: list[dict]) -> None:
    """Accept the batch without handing it to anyone."""


handoff._publish = publish_nowhere

__all__ = ["application"]
