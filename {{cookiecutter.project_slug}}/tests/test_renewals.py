"""The renewals an idle process does for all its sockets (presence entries, socket slots):
what they renew, reap and announce, and that they cost a few script calls, not commands per
room or per user. Real Redis, no sockets: the functions the heartbeat and the keeper call."""

import time
import uuid

import pytest
from redis.asyncio.connection import AbstractConnection

from chat import presence, redis_scripts, redis_store, socket_slots


def a_room() -> str:
    return f"renew-{uuid.uuid4().hex[:10]}"


def entry(username: str) -> str:
    return presence.member(f"specific.{uuid.uuid4().hex}!{uuid.uuid4().hex[:8]}", username)


@pytest.fixture
def commands_sent(monkeypatch):
    """How many Redis commands the WebSocket side's connections have packed since."""
    sent = []
    pack = AbstractConnection.pack_command

    def counting(self, *args):
        sent.append(args[0])
        return pack(self, *args)

    monkeypatch.setattr(AbstractConnection, "pack_command", counting)
    return sent


async def scores(room: str) -> dict[str, float]:
    members = await redis_store.async_client().zrange(
        redis_store.presence(room), 0, -1, withscores=True
    )
    return dict(members)


async def test_one_renewal_of_many_rooms_is_a_few_script_calls_sent_by_digest(commands_sent):
    rooms = {a_room(): {entry(f"u{n}-{i}") for i in range(20)} for n in range(300)}
    for room, entries in rooms.items():
        for e in entries:
            await presence.join(room, e)
    await presence.renew_and_reap(rooms)  # the script is loaded once, here if not before
    commands_sent.clear()

    assert await presence.renew_and_reap(rooms) == {}
    assert commands_sent and set(commands_sent) == {"EVALSHA"}, commands_sent[:5]
    # 6,000 entries, at least RENEW_BATCH per call: not two scripts per room (600 commands).
    assert len(commands_sent) <= 6000 // presence.RENEW_BATCH + 1


async def test_renewal_pushes_back_every_entry_even_past_a_chunk_and_a_batch(settings):
    settings.CHAT_PRESENCE_TTL = 30
    big = a_room()  # more entries than a ZMSCORE or a ZADD takes at once
    rooms = {big: {entry(f"u{i}") for i in range(redis_scripts.CHUNK * 2 + 7)}}
    rooms |= {a_room(): {entry("ann"), entry("bob")} for _ in range(presence.RENEW_BATCH)}
    for room, entries in rooms.items():
        for e in entries:
            await presence.join(room, e)
    before = time.time()

    assert await presence.renew_and_reap(rooms) == {}
    for room, entries in [(big, rooms[big]), *list(rooms.items())[-2:]]:
        renewed = await scores(room)
        assert set(renewed) == entries
        assert min(renewed.values()) >= before + 30
        ttl = await redis_store.async_client().ttl(redis_store.presence(room))
        assert 0 < ttl <= presence.key_lifetime()


async def test_renewal_announces_a_rejoin_once_per_user_and_the_users_whose_entries_ran_out(
    settings,
):
    settings.CHAT_PRESENCE_TTL = 30
    quiet, busy = a_room(), a_room()
    ann = {entry("ann"), entry("ann")}  # two tabs, both reaped meanwhile: one rejoin
    bob, dead = entry("bob"), entry("dead")
    for e in (bob, dead):
        await presence.join(busy, e)
    await presence.join(quiet, entry("carol"))
    # The dead process's entry ran out a while ago, and nobody renews it.
    await redis_store.async_client().zadd(redis_store.presence(busy), {dead: time.time() - 1})

    found = await presence.renew_and_reap({busy: {*ann, bob}, quiet: set()})

    assert found == {busy: (["ann"], ["dead"])}  # nothing to say about the quiet room
    assert set(await scores(busy)) == {*ann, bob}
    assert await presence.users(busy) == ["ann", "bob"]


async def test_a_rejoining_user_with_a_live_entry_elsewhere_in_the_room_is_not_announced(
    settings,
):
    settings.CHAT_PRESENCE_TTL = 30
    room = a_room()
    other_process = entry("ann")
    await presence.join(room, other_process)
    mine = entry("ann")  # reaped meanwhile; ann never left the room

    assert await presence.renew_and_reap({room: {mine}}) == {}
    assert set(await scores(room)) == {other_process, mine}


async def test_slot_renewal_is_a_few_script_calls_and_never_brings_back_a_released_slot(
    settings, commands_sent
):
    settings.CHAT_SOCKET_SLOT_TTL = 60
    base = 10_000_000 + uuid.uuid4().int % 1_000_000
    held = {base + n: {f"specific.{uuid.uuid4().hex}" for _ in range(10)} for n in range(300)}
    held[base + 300] = {f"specific.{n}" for n in range(redis_scripts.CHUNK * 2 + 3)}
    client = redis_store.async_client()
    for user_id, holders in held.items():
        await client.zadd(redis_store.user_sockets(user_id), dict.fromkeys(holders, 1.0))
    released = next(iter(held[base]))
    await socket_slots.release(base, released)
    await socket_slots.renew(held)  # the script is loaded once, here if not before
    commands_sent.clear()
    before = time.time()

    await socket_slots.renew(held)

    assert commands_sent and set(commands_sent) == {"EVALSHA"}, commands_sent[:5]
    assert (
        len(commands_sent) <= (3000 + redis_scripts.CHUNK * 2 + 3) // socket_slots.RENEW_BATCH + 1
    )
    for user_id in (base, base + 299, base + 300):
        key = redis_store.user_sockets(user_id)
        claims = dict(await client.zrange(key, 0, -1, withscores=True))
        expected = held[user_id] - {released}
        assert set(claims) == expected, "a released slot came back, or one was not renewed"
        assert min(claims.values()) >= before + 60
        assert 0 < await client.ttl(key) <= 61
    for user_id in held:
        await client.delete(redis_store.user_sockets(user_id))
