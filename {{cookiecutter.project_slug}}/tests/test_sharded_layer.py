"""Past one process and one Redis (docs/scaling.md): two ASGI processes, as behind a load
balancer, and the channel layer sharded over three redis-servers (``CHANNEL_LAYER_URLS``),
with every room's members on both processes."""

import asyncio
import signal

import pytest
import redis
from django.conf import settings

from support.processes import RedisServer, child_env, start_web
from tests.wsclient import Client

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHARDS = 3
# Fixed names: the layer places a room's group on a shard by a hash of its name, so these
# land where they landed when the test was written, on every shard.
ROOMS = [f"sharded-{n}" for n in range(6)]
MEMBERS = 4  # per room, alternately on either process
MESSAGES = 3  # from each member


@pytest.fixture
def shards(tmp_path):
    servers = []
    for n in range(SHARDS):
        directory = tmp_path / f"shard-{n}"
        directory.mkdir()
        servers.append(RedisServer(directory, appendfsync=None))
    yield servers
    for server in servers:
        server.stop(signal.SIGKILL)


def groups_on(server: RedisServer) -> int:
    """How many groups live on a shard: subscribed channels (pub/sub layer) or group keys
    (core layer)."""
    with redis.Redis.from_url(server.url) as shard:
        if settings.CHANNEL_LAYER == "redis_pubsub":
            return len(shard.pubsub_channels())
        return len(shard.keys("*group*"))


def test_every_member_on_either_process_gets_every_message_of_its_room(
    shards, make_user, persist_queue, tmp_path
):
    env = child_env(CHANNEL_LAYER_URLS=",".join(server.url for server in shards))
    (web_a, port_a), (web_b, port_b) = (start_web(env, tmp_path / f"web-{n}.log") for n in "ab")
    processes = [f"ws://127.0.0.1:{port_a}", f"ws://127.0.0.1:{port_b}"]
    users = [make_user() for _ in range(len(ROOMS) * MEMBERS)]

    async def scenario():
        clients, room_of = [], {}
        for n, user in enumerate(users):
            room = ROOMS[n % len(ROOMS)]
            client = Client(processes[(n // len(ROOMS)) % 2], user, room)
            clients.append(client)
            room_of[client] = room
        for client in clients:
            await client.__aenter__()
        try:
            spread = [groups_on(server) for server in shards]
            sent = {c: [await c.send(f"{c.url} {i}") for i in range(MESSAGES)] for c in clients}
            for client in clients:
                room = room_of[client]
                heard = {i for c in clients if room_of[c] == room for i in sent[c]}
                await client.wait_until(
                    lambda frames, heard=heard, mine=set(sent[client]): (
                        heard <= {f["id"] for f in frames if f["type"] == "message"}
                        and mine <= {f["id"] for f in frames if f["type"] == "message.accepted"}
                    )
                )
            return spread
        finally:
            for client in clients:
                await client.__aexit__(None, None, None)

    try:
        spread = asyncio.run(scenario())
    finally:
        web_a.stop()
        web_b.stop()
    print(f"groups per shard while the sockets were open: {spread}")
    assert all(spread), f"every shard carries some of the groups: {spread}"
