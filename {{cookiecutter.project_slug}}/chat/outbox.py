"""What a socket has yet to send, bounded: a client that reads slower than its room talks
is closed with 4408 instead of growing the process.

Every frame for a socket goes through its ``Outbox``: the consumer puts serialised text in
and returns at once (so the room's fan-out never waits for one reader, and the channel
layer's queue for the socket stays empty), and one writer task hands the frames to the
ASGI server in order. The server's own buffer stays small through its flow control:

- uvicorn's ``send`` waits while the transport holds more than asyncio's high-water mark
  (64 KiB, resuming under 16 KiB);
- daphne's ``send`` never waits (Twisted buffers whatever it is given), so the writer
  registers as the connection's push producer (in place of Twisted's HTTP channel), the
  Twisted way of flow control, and waits while Twisted says its buffer is over
  ``bufferSize`` (64 KiB).

What the server cannot take yet waits here, counted in frames and bytes (memory, as
``sys.getsizeof`` counts it). Past ``CHAT_SEND_BACKLOG_FRAMES`` or
``CHAT_SEND_BACKLOG_BYTES`` the backlog is dropped and the socket is closed with 4408.

Without this the backlog of a slow reader lives where nothing bounds or measures it: in the
pub/sub channel layer's asyncio.Queue for the socket (the consumer handles one event at a
time, and its handler waits in ``send``), or in Twisted's write buffer under daphne.
"""

import asyncio
import contextlib
import sys
from collections import deque
from collections.abc import Awaitable, Callable

from ops import metrics

# Seconds daphne waits for the client's answer to a close before it resets the connection
# (autobahn's default is 1). A 4408 close frame leaves behind all a slow reader has not read:
# up to Twisted's 64 KiB and the kernel's send buffer (about 120 KB measured on loopback),
# which a reader at 8 KB/s takes 15-20 s to get through. uvicorn's websockets gives a
# server's close up to four times its 10 s close timeout.
CLOSE_HANDSHAKE_TIMEOUT = 30
Write = Callable[[str], Awaitable[None]]
Close = Callable[[int], Awaitable[None]]


class TwistedFlow:
    """A Twisted push producer that only listens: Twisted pauses it when the connection's
    write buffer is over ``bufferSize`` and resumes it once the buffer has drained."""

    def __init__(self):
        self.resumed = asyncio.Event()
        self.resumed.set()

    def pauseProducing(self):  # Twisted's IPushProducer
        self.resumed.clear()

    def resumeProducing(self):
        self.resumed.set()

    def stopProducing(self):  # the connection is gone: let the writer find out
        self.resumed.set()

    async def writable(self):
        await self.resumed.wait()


def server_flow_control(send) -> TwistedFlow | None:
    """Flow control to add for the ASGI server behind ``send``: daphne's (a partial of its
    ``handle_reply`` on the connection's protocol) needs it; uvicorn's ``send`` already
    waits for its transport."""
    connection = next(iter(getattr(send, "args", ())), None)
    transport = getattr(connection, "transport", None)
    if connection is None or transport is None or not hasattr(transport, "registerProducer"):
        return None
    flow = TwistedFlow()
    # Twisted's HTTP channel, which read the handshake, registered itself as the
    # transport's producer and is never unregistered after daphne's upgrade (its request
    # never finishes): ours would be refused, and a full buffer would pause only the
    # channel, which does nothing then. So Twisted would buffer every frame it is given.
    transport.unregisterProducer()
    transport.registerProducer(flow, True)
    connection.closeHandshakeTimeout = CLOSE_HANDSHAKE_TIMEOUT
    return flow


class Outbox:
    def __init__(self, write: Write, close: Close, *, max_frames: int, max_bytes: int, code: int):
        self.write = write  # hands one text frame to the server
        self.close_socket = close  # sends the server a close with this code
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.code = code  # the close code when the backlog is over its bound
        self.frames: deque[str] = deque()
        self.bytes = 0
        self.ready = asyncio.Event()
        self.flow: TwistedFlow | None = None
        self.writer: asyncio.Task | None = None
        self.closed = False  # no more frames: over its bound, or the socket is closing
        self.closing = False  # the writer is closing the socket (over its bound)

    def start(self, send) -> None:
        """Once the socket is accepted: start the writer on the server's ``send``."""
        self.flow = server_flow_control(send)
        self.writer = asyncio.create_task(self.run())

    def put(self, text: str) -> None:
        """Queue one frame, or drop it if the socket is closing. Never waits."""
        if self.closed:
            return
        self.frames.append(text)
        self.bytes += sys.getsizeof(text)
        if len(self.frames) > self.max_frames or self.bytes > self.max_bytes:
            self.closed = True  # the writer closes the socket, after the frame it is on
            self.frames.clear()
            self.bytes = 0
            metrics.SLOW_CLIENTS_CLOSED.inc()
        self.ready.set()

    async def run(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):  # the server has closed the socket
            while not self.closed:
                await self.ready.wait()
                self.ready.clear()
                while self.frames and not self.closed:
                    text = self.frames.popleft()
                    self.bytes -= sys.getsizeof(text)
                    if self.flow is not None:
                        await self.flow.writable()
                    await self.write(text)
                    metrics.FRAMES_SENT.inc()
            self.closing = True
            await self.close_socket(self.code)  # over its bound (stop() cancels us first)

    async def stop(self) -> bool:
        """No more frames: the socket is closing for another reason, or is gone. Waits
        for the frame being handed over, never for the rest. False if the writer is
        already closing the socket (4408): nothing more may be sent then."""
        if self.closing:
            return False
        self.closed = True
        self.frames.clear()
        self.bytes = 0
        writer, self.writer = self.writer, None
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError, RuntimeError):
                await writer
        return True
