"""The Redis budget: its arithmetic, the check against a real server's ``maxclients``, and
what a socket hears when the pool it needs is exhausted.

Every process's Redis clients come from pools whose sizes are settings
(``config.connections.RedisBudget``); ``manage.py preflight`` adds them up per Redis server
and refuses a budget past that server's ``maxclients``, as the PostgreSQL budget is checked
against ``max_connections``.
"""

import asyncio
import dataclasses
import json
import time
import uuid

import pytest
import redis
from django.core.management import CommandError, call_command

from chat import pending, redis_store
from config.channel_layer import PipelinedPubSubChannelLayer
from config.connections import ConnectionBudget, RedisBudget, redis_client_name, redis_server
from config.roles import Role
from ops.checks import redis_budget_fits_servers
from support.processes import RedisServer
from tests.communicator import connected, frames_until

PROCESSES = ConnectionBudget(
    web_processes=2,
    web_pool_size=4,
    worker_processes=3,
    worker_pool_size=1,
    manage_pool_size=2,
    reserve=3,
)
BUDGET = RedisBudget(
    processes=PROCESSES,
    store_url="redis://:secret@store:6379/0",
    store_pool_size=5,
    # Two shards: one on the store's server (another database: the same server), one apart.
    layer_urls=("redis://store:6379/1", "redis://layer:6380/0"),
    layer_pool_size=3,
    broker_url="redis://store:6379/2",
    broker_pool_limit=4,
    reserve=7,
)


def test_the_budget_adds_every_pool_per_redis_server_whatever_the_database():
    # One ASGI process or worker child: store 5 x (blocking + 1 event loop) + cache 1, a
    # layer pool of 3 per shard on one loop, 4 broker connections of 2 Redis clients each.
    assert BUDGET.per_process() == {"store:6379": 10 + 1 + 3 + 8, "layer:6380": 3}
    assert BUDGET.per_pool() == {
        "store": 5,
        "store-async": 5,
        "cache": 1,
        "layer": 2 * 3,
        "broker": 8,
    }
    assert BUDGET.allowed(Role.WEB) == {"store:6379": 2 * 22, "layer:6380": 2 * 3}
    # Three children, and the worker's main process: store 5 + cache 1 + broker 8 + 2 to
    # consume, and no channel layer.
    assert BUDGET.allowed(Role.WORKER) == {"store:6379": 3 * 22 + 16, "layer:6380": 3 * 3}
    assert BUDGET.allowed(Role.MANAGE) == {"store:6379": 7}
    assert BUDGET.servers == {"store:6379": 44 + 82 + 7, "layer:6380": 6 + 9}
    assert BUDGET.server_urls() == {
        "store:6379": "redis://:secret@store:6379/0",
        "layer:6380": "redis://layer:6380/0",
    }


def test_a_broker_that_is_not_redis_costs_redis_nothing():
    budget = dataclasses.replace(BUDGET, broker_url=None)
    assert budget.per_process()["store:6379"] == 10 + 1 + 3
    assert budget.worker_main_process() == {"store:6379": 6}


def test_the_budget_counts_the_pools_the_project_really_makes(settings):
    """The figures the budget adds are the ones the clients are built with."""
    budget = settings.REDIS_BUDGET
    assert redis_store.client_options("store")["max_connections"] == budget.store_pool_size
    hosts = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    assert {host["max_connections"] for host in hosts} == {budget.layer_pool_size}
    assert [host["address"] for host in hosts] == list(budget.layer_urls)
    assert redis_server("redis://h:1/3") == redis_server("redis://u:p@h:1/0") == "h:1"


def budget_on(server: RedisServer, settings) -> RedisBudget:
    """The project's budget, every role pointed at ``server``."""
    settings.REDIS_URL = server.url
    settings.REDIS_BUDGET = dataclasses.replace(
        settings.REDIS_BUDGET,
        store_url=server.url,
        layer_urls=(server.url,),
        broker_url=server.url,
    )
    return settings.REDIS_BUDGET


@pytest.fixture
def redis_with(tmp_path):
    """Start private redis-servers with the given options; stop them afterwards."""
    servers = []

    def start(*options: str) -> RedisServer:
        directory = tmp_path / f"redis-{len(servers)}"
        directory.mkdir()
        servers.append(RedisServer(directory, appendfsync=None, options=options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def total_on(server: RedisServer, settings) -> int:
    return budget_on(server, settings).servers[redis_server(server.url)]


@pytest.mark.django_db
def test_preflight_refuses_a_budget_past_the_servers_maxclients(redis_with, settings, capsys):
    probe = redis_with()
    total = total_on(probe, settings)
    small = redis_with("--maxclients", str(total - 1))
    budget_on(small, settings)
    with pytest.raises(CommandError, match="Redis budget does not fit"):
        call_command("preflight")
    err = capsys.readouterr().err
    assert "ops.E003" in err and f"= {total} clients, server maxclients = {total - 1}" in err
    assert "REDIS_POOL_SIZE" in err and "CHANNEL_LAYER_MAX_CONNECTIONS" in err


@pytest.mark.django_db
def test_preflight_passes_a_budget_well_within_maxclients(redis_with, settings, capsys):
    probe = redis_with()
    large = redis_with("--maxclients", str(total_on(probe, settings) * 2))
    budget_on(large, settings)
    call_command("preflight")
    assert "the budget fits every server's maxclients" in capsys.readouterr().out


def test_the_check_warns_above_80_percent(redis_with, settings):
    probe = redis_with()
    near = redis_with("--maxclients", str(int(total_on(probe, settings) / 0.9)))
    budget_on(near, settings)
    found = redis_budget_fits_servers(databases=["default"])
    assert [message.id for message in found] == ["ops.W002"]
    assert redis_budget_fits_servers(databases=None) == []


def test_without_config_maxclients_comes_from_info(redis_with, settings):
    """Managed Redis services rename CONFIG away; INFO still tells maxclients."""
    probe = redis_with()
    total = total_on(probe, settings)
    renamed = redis_with("--maxclients", str(total - 1), "--rename-command", "CONFIG", "")
    budget_on(renamed, settings)
    assert [m.id for m in redis_budget_fits_servers(databases=["default"])] == ["ops.E003"]


def test_a_server_that_does_not_answer_is_a_warning_not_a_pass(settings):
    settings.REDIS_BUDGET = dataclasses.replace(
        settings.REDIS_BUDGET, layer_urls=("redis://127.0.0.1:1/0",)
    )
    found = redis_budget_fits_servers(databases=["default"])
    assert [m.id for m in found if "127.0.0.1:1" in m.msg] == ["ops.W003"]


async def test_the_pub_sub_layer_never_needs_more_than_two_connections_per_shard_and_loop():
    """The pub/sub layer keeps channels_redis's own pool, which raises "Too many
    connections" past its cap instead of waiting: the budget counts on the library running
    a shard's commands one at a time (its lock), so that two connections (one subscribed,
    one for commands) carry any burst, the project's ``send_many`` pipelines included. Were
    the lock gone, this burst would fail."""
    url = redis_store.client().connection_pool.connection_kwargs
    address = f"redis://{url['host']}:{url['port']}/{url['db']}"
    layer = PipelinedPubSubChannelLayer(
        hosts=[{"address": address, "max_connections": 2}], prefix=f"probe-{uuid.uuid4().hex}"
    )
    channels = [await layer.new_channel() for _ in range(100)]
    try:
        await asyncio.gather(*(layer.group_add(f"g{n % 10}", c) for n, c in enumerate(channels)))
        await asyncio.gather(*(layer.group_send(f"g{n % 10}", {"type": "x"}) for n in range(300)))
        await asyncio.gather(
            *(layer.send(c, {"type": "y"}) for c in channels[:50]),
            *(layer.send_many([(c, {"type": "y"})]) for c in channels[50:]),
        )
        assert len(await asyncio.gather(*(layer.receive(c) for c in channels))) == 100
    finally:
        await layer.flush()


@pytest.mark.django_db(transaction=True)
@pytest.mark.database_forbidden
@pytest.mark.usefixtures("persist_queue")
async def test_an_exhausted_pool_waits_its_timeout_then_the_sender_hears_unavailable(ann, settings):
    """With every connection of the store's pool held, a ``message.send`` waits
    ``REDIS_POOL_TIMEOUT`` for one, no more, and is answered ``unavailable``; once one
    frees, the same socket's resend is accepted, nothing restarted."""
    settings.REDIS_POOL_SIZE, settings.REDIS_POOL_TIMEOUT = 1, 1.5
    ann_socket = await connected(ann)  # the loop's store client, made with those settings
    pool = redis_store.async_client().connection_pool
    held = await pool.get_connection()
    sent = {"type": "message.send", "id": str(uuid.uuid4()), "body": "while exhausted"}
    started = time.monotonic()
    await ann_socket.send_json_to(sent)
    frames = await frames_until(ann_socket, lambda f: any(x["type"] == "error" for x in f), 10)
    waited = time.monotonic() - started
    assert (frames[-1]["code"], frames[-1]["id"]) == ("unavailable", sent["id"])
    assert settings.REDIS_POOL_TIMEOUT * 0.9 <= waited < settings.REDIS_POOL_TIMEOUT + 2

    await pool.release(held)
    await ann_socket.send_json_to(sent)  # resent, same id, as the contract asks
    await frames_until(ann_socket, lambda f: any(x["type"] == "message.accepted" for x in f))
    await ann_socket.disconnect()
    # The queue is purged afterwards: leave no accepted, unstored entry for a later test's
    # worker to sweep up and store.
    pending.forget([{"author_id": ann.user.pk, "id": sent["id"]}])


def test_redisconnections_shows_clients_now_against_the_budget(redis_with, settings, capsys):
    server = redis_with("--maxclients", "5000")
    total = total_on(server, settings)
    # Two of the project's (by the name its pools give their connections), one someone else's.
    names = [redis_client_name("store"), redis_client_name("store"), "another-project"]
    held = [redis.Redis.from_url(server.url, client_name=name) for name in names]
    for client in held:
        client.ping()
    call_command("redisconnections", "--json")
    figures = json.loads(capsys.readouterr().out)["servers"][redis_server(server.url)]
    assert figures["now"] == 3 and figures["ours"] == {"store": 2}
    assert figures["budget_total"] == total
    assert figures["maxclients"] == 5000 and figures["budget"]["manage"] == 10
    call_command("redisconnections")
    assert "ours by pool: store 2" in capsys.readouterr().out
    for client in held:
        client.close()
