"""Per-message compression (permessage-deflate) is off unless ``WS_PER_MESSAGE_DEFLATE`` turns
it on: measured, it cost 2-3x the memory per idle socket (docs/benchmark.md, "Sockets"), for
bandwidth a chat's small frames barely save. Browsers always offer it, so what decides is
whether the server accepts: the handshake's ``Sec-WebSocket-Extensions`` answer, from the
server the Procfile starts.
"""

import asyncio

import pytest
from websockets.asyncio.client import connect

from support.processes import child_env, start_web

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def negotiated(port: int, cookie: str) -> str | None:
    """The extensions the server accepted for a client that offers permessage-deflate."""

    async def handshake() -> str | None:
        async with connect(
            f"ws://127.0.0.1:{port}/ws/rooms/compression/",
            origin="http://localhost",
            additional_headers={"Cookie": cookie},
            compression="deflate",  # offered, as every browser does
        ) as socket:
            assert socket.response is not None
            return socket.response.headers.get("Sec-WebSocket-Extensions")

    return asyncio.run(handshake())


@pytest.mark.parametrize(
    ("setting", "compressed"), [(None, False), ("false", False), ("true", True)]
)
def test_the_server_compresses_only_when_the_setting_says_so(
    ann, tmp_path, monkeypatch, setting, compressed
):
    monkeypatch.delenv("WS_PER_MESSAGE_DEFLATE", raising=False)  # None: the shipped default
    env = child_env() if setting is None else child_env(WS_PER_MESSAGE_DEFLATE=setting)
    web, port = start_web(env, tmp_path / "web.log")
    try:
        extensions = negotiated(port, ann.cookie)
    finally:
        web.stop()
    assert ("permessage-deflate" in (extensions or "")) is compressed, extensions
