"""The persistence side against the real PostgreSQL: idempotent, bad rows parked, bounded."""

import io
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import redis_store
from chat.models import DeadLetter, Message
from chat.offsets import RESEED_GAP
from chat.persistence import store_batch
from config.roles import Role
from support.pgstat import connections_of
from support.processes import sampling, wait_for


def record(user, room: str = "general", **overrides) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "room": room,
        "author": user.username,
        "author_id": user.pk,
        "body": "hello",
        "sent_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "reply_channel": "",
        **overrides,
    }


@pytest.fixture
def author(django_user_model):
    return django_user_model.objects.create_user(username=f"a-{uuid.uuid4().hex[:8]}")


@pytest.mark.django_db
def test_a_batch_delivered_twice_is_stored_once(author):
    batch = [record(author) for _ in range(50)]
    first = store_batch(batch)
    second = store_batch(batch)

    assert len(first.stored) == len(second.stored) == 50
    assert Message.objects.count() == 50
    stored = Message.objects.get(id=batch[0]["id"])
    assert stored.body == "hello" and stored.author_id == author.pk
    assert stored.sent_at == datetime.fromisoformat(batch[0]["sent_at"])


@pytest.mark.django_db
def test_a_bad_row_goes_to_the_dead_letter_and_the_good_rows_are_stored(author):
    good = [record(author) for _ in range(3)]
    too_long = record(author, room="x" * 65)  # a record no client could have made
    malformed = {"id": "not-a-uuid", "room": "general"}
    result = store_batch([good[0], too_long, good[1], malformed, good[2]])

    assert set(Message.objects.values_list("id", flat=True)) == {uuid.UUID(r["id"]) for r in good}
    assert [r["id"] for r in result.stored] == [r["id"] for r in good]
    dead = {d.message_id: d for d in DeadLetter.objects.all()}
    assert set(dead) == {uuid.UUID(too_long["id"]), None}
    assert "too long" in dead[uuid.UUID(too_long["id"])].reason.lower()
    assert dead[None].record == malformed

    store_batch([too_long])  # redelivered: parked once, not twice
    assert DeadLetter.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_batch_with_nothing_refused_is_one_statement_and_its_own_transaction(author):
    """The usual batch: the authors' lock and the INSERT in one statement, in autocommit.
    A BEGIN and COMMIT around it, or a savepoint and SET CONSTRAINTS (needed only once
    PostgreSQL has refused a row), would each cost a round trip more."""
    with CaptureQueriesContext(connection) as queries:
        result = store_batch([record(author) for _ in range(20)])

    assert len(result.stored) == 20 and Message.objects.count() == 20
    statements = [query["sql"].split()[0].upper() for query in queries]
    assert statements == ["WITH"], statements


@pytest.mark.django_db(transaction=True)
def test_a_refused_row_rolls_back_the_batch_and_the_rest_is_stored_row_by_row(author):
    """Outside a test's transaction, as in the worker: the batch's first transaction is
    rolled back whole, and the second stores each good row once and parks the bad one."""
    good = [record(author) for _ in range(5)]
    refused = record(author, room="x" * 65)
    result = store_batch([*good[:2], refused, *good[2:]])

    assert [r["id"] for r in result.stored] == [r["id"] for r in good]
    assert Message.objects.count() == 5
    assert list(DeadLetter.objects.values_list("message_id", flat=True)) == [
        uuid.UUID(refused["id"])
    ]


@pytest.mark.django_db
def test_two_authors_refused_records_under_one_id_are_each_parked_once(author, django_user_model):
    other = django_user_model.objects.create_user(username=f"o-{uuid.uuid4().hex[:8]}")
    message_id = str(uuid.uuid4())
    refused = [record(user, room="x" * 65, id=message_id) for user in (author, other)]
    nameless = {"id": message_id, "room": "general"}  # no author: parked once per id

    store_batch([*refused, nameless])
    store_batch([*refused, nameless])  # redelivered

    parked = DeadLetter.objects.filter(message_id=message_id)
    assert sorted(parked.values_list("author_id", flat=True), key=str) == sorted(
        [author.pk, other.pk, None], key=str
    )


@pytest.mark.django_db
def test_a_deleted_authors_messages_are_discarded_not_dead_lettered(author, django_user_model):
    """A user deleted while their accepted messages wait for the worker: the messages go
    with the account, as the stored ones do (CASCADE), and nothing is parked."""
    gone = django_user_model.objects.create_user(username=f"g-{uuid.uuid4().hex[:8]}")
    kept, orphans = record(author), [record(gone) for _ in range(2)]
    gone.delete()
    result = store_batch([orphans[0], kept, orphans[1]])

    assert [r["id"] for r in result.stored] == [kept["id"]]
    assert [r["id"] for r in result.discarded] == [r["id"] for r in orphans]
    assert list(Message.objects.values_list("id", flat=True)) == [uuid.UUID(kept["id"])]
    assert not DeadLetter.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_racing_on_the_same_ids_store_each_once(author):
    batch = [record(author) for _ in range(200)]
    start = threading.Barrier(4)

    def race(shuffled):
        start.wait()
        try:
            return len(store_batch(shuffled).stored)
        finally:
            connection.close()

    batches = [batch, batch[::-1], batch[50:] + batch[:50], batch[::2] + batch[1::2]]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(race, batches)) == [200] * 4
    assert Message.objects.count() == 200


@pytest.mark.django_db(transaction=True)
def test_the_pool_never_exceeds_its_bound_under_concurrent_batches(author):
    bound = settings.CONNECTION_BUDGET.pool_size(Role.MANAGE)
    threads = bound * 4
    peak = 0

    def watch():
        nonlocal peak
        peak = max(peak, connections_of(Role.MANAGE))

    def batches(n):
        try:
            for _ in range(5):
                store_batch([record(author) for _ in range(100)])
        finally:
            connection.close()  # back to the pool, as after a task

    with sampling(watch), ThreadPoolExecutor(threads) as pool:
        list(pool.map(batches, range(threads)))

    assert Message.objects.count() == threads * 5 * 100
    assert 1 <= peak <= bound
    wait_for(lambda: connections_of(Role.MANAGE) <= bound, 5, "connections to settle")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("flags", "gap"), [((), 0), (("--after-loss",), RESEED_GAP)])
def test_seed_offsets_by_hand_raises_and_after_a_loss_starts_past_the_gap(author, flags, gap):
    """An old snapshot's counters are there but lag: by hand, the operator says they were
    lost (docs/operations.md); otherwise seeding only raises them to the stored maximum."""
    room = f"seed-{uuid.uuid4().hex[:8]}"
    store_batch([record(author, room, offset=17)])
    call_command("seed_offsets", *flags, stdout=io.StringIO())
    counter = redis_store.client().hget(redis_store.room_offsets(), room)
    assert int(counter) == 17 + gap
    redis_store.client().hdel(redis_store.room_offsets(), room, redis_store.OFFSETS_BASE)
