"""A TCP proxy that a fault test cuts and restores: a server made unreachable for a while
without stopping it (the shared Redis and RabbitMQ of the machine are never stopped).

Cut, every connection through it is reset and new ones are refused, as when a server's
host drops off the network and the clients' connections break; restored, it forwards
again. It runs an event loop on a thread of its own, so the test body stays synchronous.
"""

import asyncio
import contextlib
import threading

from support.processes import free_port


class Proxy:
    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.BaseTransport] = set()  # both ends of each, while open
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="proxy", daemon=True)
        self.thread.start()
        self.restore()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def restore(self) -> None:
        """Forward again: connections to ``self.port`` reach the server."""
        self.call(self.listen())

    def cut(self) -> None:
        """Reset every connection through the proxy, and refuse new ones."""
        self.call(self.drop_everything())

    def call(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    async def listen(self) -> None:
        if self.server is None:
            self.server = await asyncio.start_server(self.forward, "127.0.0.1", self.port)

    async def drop_everything(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for transport in list(self.connections):
            transport.abort()  # a reset, not a polite close: the pumps end on their own

    async def forward(self, client_reader, client_writer) -> None:
        ends = {client_writer.transport}
        self.connections |= ends
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
            ends.add(server_writer.transport)
            self.connections |= ends
            await asyncio.gather(
                pump(client_reader, server_writer), pump(server_reader, client_writer)
            )
        except OSError:  # the server refused, or an end was reset
            pass
        finally:
            for transport in ends:
                transport.abort()
            self.connections -= ends


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One direction, until either end goes; then both go."""
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
