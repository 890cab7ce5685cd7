"""uvicorn's WebSocket protocol, with a keepalive timeout that drops the client at once.

A client that stops reading (a frozen tab, a phone that lost its network without a FIN)
lets the server's write buffer fill, and then nothing leaves: not the room's frames, not
the keepalive ping. The ping's timeout fires as it should, but uvicorn then closes the
transport gracefully, and asyncio closes a transport only once its buffer has drained,
which that client never lets happen: its connection, buffers, consumer and socket slot
stayed about 30 s more (tests/test_slow_clients.py). Compressed frames hid it, as long as
the room's traffic compressed well enough to fit in the kernel's buffers. Aborting the
transport drops the client when the timeout fires, as the websockets library itself does.
The Procfile's ``web`` line names this class (``--ws``).
"""

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()  # the close frame, into a buffer nobody reads
        self.transport.abort()
