"""Property-based tests of the protocol validator (hypothesis): whatever a client sends,
the answer is a valid command or a ``ProtocolError`` with one of the contract's codes.

The example tests in test_protocol.py pin each code to its cause; these throw arbitrary
JSON values and arbitrary text at the validator, so that no input makes it raise anything
else (which would tear the socket down instead of answering with an ``error`` frame).
"""

import json
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from chat import protocol
from chat.protocol import ProtocolError, SendMessage, parse_client_frame

MAX_BODY = 50
# No per-example deadline: on a loaded CI machine a slow example is not a bug.
CODES = {
    protocol.INVALID_JSON,
    protocol.INVALID_FRAME,
    protocol.UNKNOWN_TYPE,
    protocol.INVALID_ID,
    protocol.EMPTY_BODY,
    protocol.BODY_TOO_LONG,
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Frames that look like message.send, with each field possibly of the wrong type or missing:
# random JSON alone would almost never get past the "type" check.
ids = st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper()) | json_values
near_frames = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message.send", "message.sent", ""]) | json_values,
        "id": ids,
        "body": st.text(max_size=2 * MAX_BODY) | json_values,
        "extra": json_values,
    },
)


def answer(text: str):
    """What the consumer would make of a text frame: a command, or the error frame to send."""
    try:
        return parse_client_frame(text, max_body=MAX_BODY)
    except ProtocolError as error:
        return error.frame()


def check(text: str) -> None:
    result = answer(text)
    if isinstance(result, SendMessage):
        assert str(uuid.UUID(result.id)) == result.id
        assert result.body == result.body.strip() and 1 <= len(result.body) <= MAX_BODY
        assert "\x00" not in result.body
    else:
        assert result["type"] == "error" and result["code"] in CODES and result["detail"]
        assert result["id"] is None or isinstance(result["id"], str)
        json.dumps(result)  # the error frame itself can always be sent


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_frame_gets_a_command_or_a_contract_error(text):
    check(text)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_gets_a_command_or_a_contract_error(value):
    check(json.dumps(value))


@settings(max_examples=500, deadline=None)
@given(near_frames)
def test_any_near_miss_of_a_message_send_gets_a_command_or_a_contract_error(frame):
    check(json.dumps(frame))


@settings(deadline=None)
@given(st.uuids(), st.text(min_size=1, max_size=MAX_BODY))
def test_every_well_formed_frame_is_accepted_with_its_id_and_stripped_body(message_id, body):
    text = json.dumps({"type": "message.send", "id": str(message_id), "body": body})
    result = answer(text)
    stripped = body.strip()
    if stripped and "\x00" not in body:
        assert result == SendMessage(id=str(message_id), body=stripped)
    else:
        assert result["code"] in (protocol.EMPTY_BODY, protocol.INVALID_FRAME)
