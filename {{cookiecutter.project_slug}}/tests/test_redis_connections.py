"""Redis connections, like PostgreSQL's, come from pools whose sizes are settings: an ASGI
process with 300 sockets holds no more of them than its pools allow, and far fewer than
one per socket.

Django's cache keeps a client per async context and closes it only when a request finishes,
which a WebSocket never does; read on the handshake, it held one Redis connection per socket
(docs/architecture.md). Counted from outside, as an operator would: the process's TCP
connections to Redis, from /proc.
"""

import asyncio
import uuid
from collections import Counter
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from config.connections import redis_server
from support.processes import NO_RATE_LIMITS, child_env, start_web, tcp_connections_to
from support.redis_clients import clients_by_name
from tests.wsclient import Client

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FEW, MANY = 30, 300
ROOMS = 10


def redis_connections(pid: int) -> int:
    return tcp_connections_to(pid, urlsplit(settings.REDIS_URL).port or 6379)


async def open_and_talk(base: str, users, numbers: range, rooms: list[str]) -> list[Client]:
    """Sockets ``numbers`` (each user holds as many as the per-user cap allows), over
    ``rooms``; then one message into each room, heard by every socket there: handshakes,
    joins, presence, offsets, receipts, fan-out, all of them used."""
    per_user = settings.CHAT_MAX_SOCKETS_PER_USER
    clients = [Client(base, users[n // per_user], rooms[n % len(rooms)]) for n in numbers]
    for batch in range(0, len(clients), 50):
        await asyncio.gather(*(c.__aenter__() for c in clients[batch : batch + 50]))
    senders = {c.url: c for c in clients}.values()  # one socket per room
    ids = {c.url: await c.send("hello") for c in senders}
    for client in clients:
        await client.wait_until(
            lambda frames, mine=ids[client.url]: mine in {f.get("id") for f in frames}
        )
    return clients


def test_an_asgi_process_holds_redis_connections_from_bounded_pools_whatever_the_sockets(
    make_user, persist_queue, tmp_path
):
    web, port = start_web(child_env(**NO_RATE_LIMITS), tmp_path / "web.log")
    users = [make_user() for _ in range(MANY // settings.CHAT_MAX_SOCKETS_PER_USER + 1)]
    rooms = [f"redis-conn-{uuid.uuid4().hex[:6]}-{n}" for n in range(ROOMS)]

    async def scenario() -> tuple[int, int, Counter[str]]:
        base = f"ws://127.0.0.1:{port}"
        few = await open_and_talk(base, users, range(FEW), rooms)
        with_few = redis_connections(web.pid)
        many = await open_and_talk(base, users, range(FEW, MANY), rooms)
        with_many = redis_connections(web.pid)
        by_pool = clients_by_name(web.pid, settings.REDIS_URL)
        for client in few + many:
            await client.__aexit__(None, None, None)
        return with_few, with_many, by_pool

    try:
        with_few, with_many, by_pool = asyncio.run(scenario())
    finally:
        web.stop()
    print(
        f"Redis connections of the ASGI process: {with_few} with {FEW} sockets, "
        f"{with_many} with {MANY}"
    )
    # The budget's figure for one ASGI process (config/connections.py); every role's Redis
    # is the same server here.
    bound = settings.REDIS_BUDGET.per_process()[redis_server(settings.REDIS_URL)]
    assert with_many <= bound, (with_few, with_many, bound)
    assert with_many < MANY // 5, "far fewer connections than sockets: none held per socket"
    # Pool by pool, by the name each connection gives itself: every one is from a pool the
    # budget counts, and no pool holds more than its size.
    sizes = settings.REDIS_BUDGET.per_pool()
    assert by_pool and all(by_pool[name] <= sizes[name] for name in by_pool), (by_pool, sizes)
