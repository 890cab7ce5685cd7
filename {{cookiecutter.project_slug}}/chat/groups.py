"""The channel-layer groups, and the events the HTTP side sends the sockets in them.

Each socket (``chat.consumers``) joins two groups, on whichever server process it lives:

- ``room.<room>``: every socket in a room. Messages fan out here; ``access.changed`` asks
  each socket to look at the room mirror again (the room became private).
- ``user.<user id>``: every socket of one user. ``identity.revoked`` closes those opened
  with a revoked credential (4401); ``access.revoked`` closes those in a room the user was
  removed from (4403).

The HTTP side sends with ``tell``, from synchronous code (views, signal handlers,
commands). Under the ASGI server ``async_to_sync`` runs the send on the server's own event
loop; elsewhere on a short-lived one, whose channel-layer connections close with it.
"""

from typing import cast

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from config.channel_layer import ChannelLayer


def room(room: str) -> str:
    return f"room.{room}"


def user(user_id: int) -> str:
    return f"user.{user_id}"


def channel_layer() -> ChannelLayer:
    """The channel layer of the settings: one of ``config.channel_layer``'s, the only ones
    ``CHANNEL_LAYER_BACKENDS`` offers."""
    layer = get_channel_layer()
    assert layer is not None, "CHANNEL_LAYERS has no default layer"
    return cast(ChannelLayer, layer)


def tell(group: str, event: dict) -> None:
    async_to_sync(channel_layer().group_send)(group, event)


def identity_revoked(credentials: list[str] | None) -> dict:
    """To ``user(...)``: sockets opened with one of ``credentials`` (None: with any) close."""
    return {"type": "identity.revoked", "credentials": credentials}


def access_revoked(room: str) -> dict:
    """To ``user(...)``: the user's sockets in ``room`` close."""
    return {"type": "access.revoked", "room": room}


def access_changed() -> dict:
    """To ``room(...)``: every socket in the room checks the mirror again."""
    return {"type": "access.changed"}
