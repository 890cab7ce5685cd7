"""The protocol validator, with no server, socket or database: every contract error code."""

import json
import uuid

import pytest

from chat import protocol
from chat.protocol import ProtocolError, parse_client_frame

MESSAGE_ID = "6f1c1f4e-4c1a-4a77-9a55-0d1b4b1e8a10"


def frame(**fields) -> str:
    return json.dumps({"type": "message.send", "id": MESSAGE_ID, "body": "hello", **fields})


def parse(text: str, max_body: int = 4000):
    return parse_client_frame(text, max_body=max_body)


def test_a_valid_frame_parses_to_its_canonical_id_and_stripped_body():
    command = parse(frame(id=MESSAGE_ID.upper(), body="  hello  "))
    assert command.id == MESSAGE_ID
    assert command.body == "hello"


def test_unknown_fields_are_ignored_so_the_protocol_can_grow():
    assert parse(frame(reply_to="x")).body == "hello"


@pytest.mark.parametrize(
    ("text", "code", "message_id"),
    [
        ("{not json", protocol.INVALID_JSON, None),
        ("", protocol.INVALID_JSON, None),
        ("[1, 2]", protocol.INVALID_FRAME, None),
        ('"message.send"', protocol.INVALID_FRAME, None),
        (json.dumps({"id": MESSAGE_ID, "body": "x"}), protocol.INVALID_FRAME, MESSAGE_ID),
        (frame(type=7), protocol.INVALID_FRAME, MESSAGE_ID),
        (frame(type="message.delete"), protocol.UNKNOWN_TYPE, MESSAGE_ID),
        (json.dumps({"type": "message.send", "body": "x"}), protocol.INVALID_FRAME, None),
        (frame(id=42), protocol.INVALID_FRAME, None),
        (frame(id="not-a-uuid"), protocol.INVALID_ID, "not-a-uuid"),
        (frame(body=None), protocol.INVALID_FRAME, MESSAGE_ID),
        (frame(body=["hi"]), protocol.INVALID_FRAME, MESSAGE_ID),
        (frame(body="nul \x00 byte"), protocol.INVALID_FRAME, MESSAGE_ID),
        (frame(body=""), protocol.EMPTY_BODY, MESSAGE_ID),
        (frame(body=" \n\t "), protocol.EMPTY_BODY, MESSAGE_ID),
        (frame(body="x" * 4001), protocol.BODY_TOO_LONG, MESSAGE_ID),
    ],
)
def test_bad_frames_get_the_contract_error_code(text, code, message_id):
    with pytest.raises(ProtocolError) as raised:
        parse(text)
    error = raised.value.frame()
    assert error == {"type": "error", "code": code, "detail": error["detail"], "id": message_id}
    assert error["detail"]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def called_from_deep_in_the_stack(function, depth: int):
    return function() if depth == 0 else called_from_deep_in_the_stack(function, depth - 1)


def code_of(text: str) -> str:
    try:
        parse(text)
    except ProtocolError as error:
        return error.code
    raise AssertionError("accepted")


def test_nesting_has_one_limit_whatever_the_callers_stack():
    """The JSON parser's own limit is the interpreter's stack, which moves with the caller;
    the validator's is MAX_NESTING, the same answer from a test and from a consumer."""
    at_limit, past_it = nested(protocol.MAX_NESTING), nested(protocol.MAX_NESTING + 1)

    def answers():
        return code_of(at_limit), code_of(past_it)

    for depth in (0, 300):  # 300: a good part of the interpreter's stack already in use
        got = called_from_deep_in_the_stack(answers, depth)
        assert got == (protocol.INVALID_FRAME, protocol.INVALID_JSON)  # a list; too deep


def test_brackets_in_strings_are_text_not_nesting():
    text = "[{" * 1000 + '\\"'
    assert parse(frame(body=text, extra=json.loads(nested(protocol.MAX_NESTING - 1)))).body == text


def test_body_limit_counts_characters_after_stripping():
    assert parse(frame(body=" " + "é" * 4000 + " ")).body == "é" * 4000
    with pytest.raises(ProtocolError):
        parse(frame(body="x" * 11), max_body=10)


@pytest.mark.parametrize("room", ["general", "a", "A-b_9", "x" * 64])
def test_valid_room_names(room):
    assert protocol.is_valid_room(room)


@pytest.mark.parametrize("room", ["", "x" * 65, "a b", "a/b", "é", "room.1", "a\n"])
def test_invalid_room_names(room):
    assert not protocol.is_valid_room(room)


def test_server_frames_have_the_contract_shape():
    message = {
        "id": str(uuid.uuid4()),
        "room": "r",
        "author": "ann",
        "body": "hi",
        "sent_at": "2026-01-01T00:00:00.000001+00:00",
        "offset": 7,
        "author_id": 1,
    }
    assert protocol.message_frame(message) == {
        "type": "message",
        **{k: message[k] for k in ("id", "room", "author", "body", "sent_at", "offset")},
    }
    assert protocol.accepted_frame("i", "r") == {
        "type": "message.accepted",
        "id": "i",
        "receipt": "r",
    }
    assert protocol.persisted_frame("i") == {"type": "message.persisted", "id": "i"}
