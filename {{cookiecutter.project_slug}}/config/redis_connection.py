"""The connection every asyncio Redis pool of the project is made of: redis-py's own, except
that a task cancelled while it sends a command stays cancelled.

redis-py sends each command under ``asyncio.wait_for(..., socket_timeout)`` (and redis-py 8
sets a socket timeout by default). On Python 3.11, ``wait_for`` returns the result and drops
the cancellation when it arrives as the send completes (python/cpython#86296; 3.12 rewrote
``wait_for`` on ``asyncio.timeout``). The cancelled task then carries on as if nothing had
happened. In this project that left a closed socket's consumer running for good: Channels
cancels the consumer's pending ``receive()`` on the channel layer and waits for it, and the
core layer's ``receive()``, its cancellation lost, kept taking the process's messages off
Redis and never returned. The consumer's clean-up (its slot, its groups) never ran, and a
graceful shutdown of the server waited for it until it was killed: the benchmark saw
uvicorn take 20 s to stop in one run of four. Measured with redis-py 8.1 on Python 3.11.7,
four cancellations in five landing during a loop of commands were lost
(``tests/test_cancellation.py``).

So the send checks, once redis-py has returned, whether the task was cancelled meanwhile,
and if so raises the cancellation it should have raised. The reply to the command it sent
would be read by the connection's next command, so the connection is dropped first, as
redis-py drops one whose send was interrupted. On Python 3.12 and later the check never
fires; it can go with Python 3.11.

redis-py picks the connection class from the URL's scheme (TLS for ``rediss://``, a Unix
socket for ``unix://``); ``connection_class`` picks the same one, with the check.
"""

import asyncio
from urllib.parse import urlsplit

import redis.asyncio
from redis.asyncio.connection import AbstractConnection


class KeepsCancellation:
    async def send_packed_command(self, command, check_health: bool = True) -> None:
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        await super().send_packed_command(command, check_health)  # type: ignore[misc]
        if task is not None and task.cancelling() > cancels:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise asyncio.CancelledError


class Connection(KeepsCancellation, redis.asyncio.Connection):
    pass


class SSLConnection(KeepsCancellation, redis.asyncio.SSLConnection):
    pass


class UnixDomainSocketConnection(KeepsCancellation, redis.asyncio.UnixDomainSocketConnection):
    pass


def connection_class(url: str) -> type[AbstractConnection]:
    """The class of the connections of an asyncio pool on ``url``."""
    scheme = urlsplit(url).scheme
    return {"rediss": SSLConnection, "unix": UnixDomainSocketConnection}.get(scheme, Connection)
