"""The history API and read-your-writes receipts, in process (Django's test client)."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chat import cursors, pending, receipts
from chat.models import DeadLetter
from chat.persistence import store_batch

START = datetime(2026, 1, 1, tzinfo=UTC)


def record(user, room="history", sent_at=None, body="hello") -> dict:
    return {
        "id": str(uuid.uuid4()),
        "room": room,
        "author": user.username,
        "author_id": user.pk,
        "body": body,
        "sent_at": cursors.timestamp(sent_at or datetime.now(UTC)),
        "reply_channel": "",
    }


@pytest.fixture
def ann(django_user_model):
    return django_user_model.objects.create_user(username="ann")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user(username="bob")


@pytest.fixture
def as_ann(client, ann):
    client.force_login(ann)
    return client


def get(client, room="history", receipt_header=None, **params):
    headers = {"X-Write-Receipts": receipt_header} if receipt_header is not None else {}
    return client.get(f"/api/rooms/{room}/messages", params, headers=headers)


def test_cursors_round_trip_from_what_a_message_frame_carries():
    message_id = str(uuid.uuid4())
    sent_at = cursors.timestamp(START)
    assert cursors.decode(cursors.encode(sent_at, message_id, "a|b")) == (
        START,
        uuid.UUID(message_id),
        "a|b",
    )
    assert cursors.decode(cursors.encode(sent_at, message_id)) == (
        START,
        uuid.UUID(message_id),
        None,
    )
    with pytest.raises(ValueError):
        cursors.decode(cursors.encode(sent_at, message_id, ""))


@pytest.mark.parametrize("cursor", ["", "garbage!", "bm90IGEgY3Vyc29y", "MjAyNnxub3QtYS11dWlk"])
def test_a_bad_cursor_is_a_value_error(cursor):
    with pytest.raises(ValueError):
        cursors.decode(cursor)


@pytest.mark.django_db
def test_anonymous_requests_get_a_json_401(client):
    response = get(client)
    assert response.status_code == 401 and response.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "10000000000000000000000"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "²"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"before": "not-a-cursor"}, "before"),
        ({"after": "' OR 1=1 --"}, "after"),
        ({"limit": "1; DROP TABLE chat_message"}, "limit"),
        ({"limit": "9" * 5000}, "limit"),
        ({"before": "x" * 100_000}, "before"),
        ({"before": "MjAyNi0wMS0wMVQwMDowMDowMHwn"}, "before"),  # base64 of a half cursor
        ({"after": "\x00"}, "after"),
    ],
)
def test_bad_parameters_get_a_json_400_naming_them(as_ann, params, parameter):
    response = get(as_ann, **params)
    assert response.status_code == 400
    assert response.json()["parameter"] == parameter and response.json()["error"]


@pytest.mark.django_db
def test_a_malformed_room_is_a_400(as_ann):
    response = get(as_ann, room="no.dots")
    assert response.status_code == 400 and response.json()["parameter"] == "room"


@pytest.mark.django_db
def test_two_authors_messages_under_one_id_and_one_time_each_have_a_place_in_the_pages(
    as_ann, ann, bob
):
    # Possible only once an id's claim has run out; a page may end between the two.
    shared = {"id": str(uuid.uuid4()), "sent_at": cursors.timestamp(START)}
    before = record(ann, sent_at=START - timedelta(seconds=1))
    after = record(ann, sent_at=START + timedelta(seconds=1))
    store_batch([before, {**record(bob), **shared}, {**record(ann), **shared}, after])
    expected = [(before["id"], "ann"), (shared["id"], "ann"), (shared["id"], "bob")]
    expected.append((after["id"], "ann"))

    for direction in ("after", "before"):
        seen, params = [], {"limit": 1}
        if direction == "after":
            params["after"] = cursors.encode(
                cursors.timestamp(START - timedelta(days=1)), before["id"]
            )
        while True:
            page = get(as_ann, **params).json()
            seen += page["messages"]
            if page["next"] is None:
                break
            params[direction] = page["next"]
        if direction == "before":
            seen.reverse()
        assert [(m["id"], m["author"]) for m in seen] == expected


@pytest.mark.django_db
def test_pages_are_oldest_first_and_walk_back_and_forward(as_ann, ann):
    batch = [record(ann, sent_at=START + timedelta(seconds=n)) for n in range(7)]
    store_batch(batch)
    ids = [r["id"] for r in batch]

    newest = get(as_ann, limit=3).json()
    assert [m["id"] for m in newest["messages"]] == ids[4:]
    older = get(as_ann, limit=3, before=newest["next"]).json()
    assert [m["id"] for m in older["messages"]] == ids[1:4]
    oldest = get(as_ann, limit=3, before=older["next"]).json()
    assert [m["id"] for m in oldest["messages"]] == ids[:1] and oldest["next"] is None

    first = batch[0]
    caught_up = get(as_ann, limit=4, after=cursors.encode(first["sent_at"], first["id"])).json()
    assert [m["id"] for m in caught_up["messages"]] == ids[1:5]
    rest = get(as_ann, limit=4, after=caught_up["next"]).json()
    assert [m["id"] for m in rest["messages"]] == ids[5:] and rest["next"] is None
    last = batch[-1]
    nothing_new = get(as_ann, after=cursors.encode(last["sent_at"], last["id"])).json()
    assert nothing_new == {"messages": [], "next": None}
    assert get(as_ann, room="empty-room").json() == {"messages": [], "next": None}
    assert newest["messages"][0] == {
        "id": ids[4],
        "room": "history",
        "author": "ann",
        "body": "hello",
        "sent_at": batch[4]["sent_at"],
        "offset": None,  # these records were made without one
        "persisted": True,
    }


@pytest.mark.django_db
def test_a_receipt_shows_an_accepted_message_before_it_is_stored_then_once_stored(as_ann, ann):
    message = record(ann)
    receipt = receipts.issue(message, ann.pk)
    pending.remember([message])

    before = get(as_ann, receipt_header=receipt)
    assert before["X-Consistency"] == "pending"
    assert [(m["id"], m["persisted"]) for m in before.json()["messages"]] == [
        (message["id"], False)
    ]
    assert get(as_ann).json()["messages"] == []  # without the receipt, nothing yet

    store_batch([message])
    pending.forget([message])
    for header in (receipt, None):
        stored = get(as_ann, receipt_header=header)
        assert stored["X-Consistency"] == "complete"
        assert [(m["id"], m["persisted"]) for m in stored.json()["messages"]] == [
            (message["id"], True)
        ]


@pytest.mark.django_db
def test_a_stored_message_named_by_a_receipt_appears_once_even_if_still_pending(as_ann, ann):
    message = record(ann)
    pending.remember([message])
    store_batch([message])  # stored, and its pending entry not yet cleared
    response = get(as_ann, receipt_header=receipts.issue(message, ann.pk))
    assert [m["id"] for m in response.json()["messages"]] == [message["id"]]
    assert response.json()["messages"][0]["persisted"] is True
    assert response["X-Consistency"] == "complete"


@pytest.mark.django_db
def test_a_receipt_whose_message_vanished_is_reported_unknown_and_no_other(as_ann, ann):
    """Neither stored nor pending (lost with its pending copy): named in X-Receipts-Unknown,
    for the sender to resend. Pending, stored or dead-lettered: never named."""
    vanished, waiting, stored, refused = (record(ann) for _ in range(4))
    pending.remember([waiting, stored])
    store_batch([stored])
    pending.forget([stored])
    DeadLetter.objects.create(
        message_id=refused["id"], author_id=ann.pk, record=refused, reason="refused"
    )
    header = ",".join(receipts.issue(m, ann.pk) for m in (vanished, waiting, stored, refused))

    response = get(as_ann, receipt_header=header)
    assert response["X-Receipts-Unknown"] == vanished["id"]
    assert response["X-Consistency"] == "pending"
    assert {m["id"] for m in response.json()["messages"]} == {waiting["id"], stored["id"]}

    pending.remember([vanished])  # resent with its id: accepted again
    response = get(as_ann, receipt_header=header)
    assert "X-Receipts-Unknown" not in response
    assert vanished["id"] in {m["id"] for m in response.json()["messages"]}


def tampered(receipt: str) -> str:
    return receipt[:-3] + ("AAA" if receipt[-3:] != "AAA" else "BBB")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "make_receipt",
    [
        pytest.param(lambda m, ann, bob: receipts.issue(m, bob.pk), id="another-users"),
        pytest.param(
            lambda m, ann, bob: receipts.issue({**m, "room": "elsewhere"}, ann.pk), id="other-room"
        ),
        pytest.param(lambda m, ann, bob: tampered(receipts.issue(m, ann.pk)), id="forged"),
        pytest.param(lambda m, ann, bob: receipts.issue(m, ann.pk)[:40], id="truncated"),
        pytest.param(lambda m, ann, bob: "not a receipt at all", id="garbage"),
        pytest.param(lambda m, ann, bob: "," * 500, id="empty-list"),
    ],
)
def test_invalid_receipts_are_ignored(as_ann, ann, bob, make_receipt):
    bobs_message = record(bob)  # pending, and not Ann's to see
    pending.remember([bobs_message])
    response = get(as_ann, receipt_header=make_receipt(bobs_message, ann, bob))
    assert response.status_code == 200
    assert response.json()["messages"] == []
    assert response["X-Consistency"] == "complete"
    assert "X-Receipts-Unknown" not in response


@pytest.mark.django_db
def test_an_expired_receipt_is_ignored(as_ann, ann, settings):
    message = record(ann)
    pending.remember([message])
    settings.CHAT_RECEIPT_MAX_AGE = -1  # every receipt is older than that
    response = get(as_ann, receipt_header=receipts.issue(message, ann.pk))
    assert response.status_code == 200 and response.json()["messages"] == []


@pytest.mark.django_db(transaction=True)
def test_walking_1000_messages_while_new_ones_arrive_has_no_gap_and_no_duplicate(as_ann, ann):
    existing = [record(ann, sent_at=START + timedelta(milliseconds=n)) for n in range(1000)]
    # Ties in sent_at are ordered by id: give some messages the very same instant.
    for n in range(0, 1000, 10):
        existing[n + 1]["sent_at"] = existing[n]["sent_at"]
    store_batch(existing)
    expected = sorted((r["sent_at"], r["id"]) for r in existing)
    writing = threading.Event()
    writing.set()

    def keep_inserting():
        from django.db import connection

        try:
            while writing.is_set():
                store_batch([record(ann) for _ in range(5)])
        finally:
            connection.close()

    writer = threading.Thread(target=keep_inserting)
    writer.start()
    try:
        backward, cursor = [], None
        while True:
            params = {"limit": 37} | ({"before": cursor} if cursor else {})
            body = get(as_ann, **params).json()
            backward = body["messages"] + backward
            if not (cursor := body["next"]):
                break
        forward, cursor = (
            [],
            cursors.encode(cursors.timestamp(START - timedelta(days=1)), str(uuid.UUID(int=0))),
        )
        while cursor:
            body = get(as_ann, limit=41, after=cursor).json()
            forward += body["messages"]
            cursor = body["next"]
    finally:
        writing.clear()
        writer.join()

    for walk in (backward, forward):
        seen = [(m["sent_at"], m["id"]) for m in walk]
        assert len(seen) == len(set(seen)), "a message appeared twice"
        assert [s for s in seen if s in set(expected)] == expected, "a gap or a reordering"


@pytest.mark.django_db
@pytest.mark.parametrize("room", ["x' OR '1'='1", "a%00b", "x" * 65])
def test_sql_looking_or_malformed_rooms_are_a_json_400_or_404(as_ann, room):
    response = get(as_ann, room=room)
    assert response.status_code in (400, 404)
    if response.status_code == 400:
        assert response.json()["parameter"] == "room"


@pytest.mark.django_db
def test_html_and_script_bodies_are_stored_and_served_verbatim(as_ann, ann):
    """The API serves JSON: escaping is the page's job when it renders (as text)."""
    body = '<script>alert("x")</script><img src=x onerror=alert(1)> &amp; \u202e'
    message = record(ann, body=body)
    store_batch([message])
    response = get(as_ann)
    assert response["Content-Type"] == "application/json"
    assert [m["body"] for m in response.json()["messages"]] == [body]


@pytest.mark.django_db
def test_a_huge_receipts_header_is_read_up_to_its_cap_and_the_rest_ignored(as_ann, ann):
    """The first receipts count; what lies past ``MAX_PER_REQUEST`` receipts or
    ``MAX_HEADER_CHARS`` characters is ignored, never an error, however large."""
    first, beyond = record(ann), record(ann)
    pending.remember([first, beyond])
    junk = ["not-a-receipt"] * (receipts.MAX_PER_REQUEST - 1)
    header = ",".join([receipts.issue(first, ann.pk), *junk, receipts.issue(beyond, ann.pk)])
    response = get(as_ann, receipt_header=header + "," + "x" * 1_000_000)
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["messages"]] == [first["id"]]

    padding = "x" * receipts.MAX_HEADER_CHARS  # the cap in characters, then a valid receipt
    response = get(as_ann, receipt_header=padding + "," + receipts.issue(beyond, ann.pk))
    assert response.status_code == 200 and response.json()["messages"] == []

    twice = ",".join([receipts.issue(first, ann.pk)] * 50)  # one message, named 50 times
    assert [m["id"] for m in get(as_ann, receipt_header=twice).json()["messages"]] == [first["id"]]
