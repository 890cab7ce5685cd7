"""Per-message compression (permessage-deflate) of WebSocket frames: off unless the process
environment says ``WS_PER_MESSAGE_DEFLATE=true``.

Browsers always offer it; a server that accepts keeps a deflate context per socket, which
measured 2-3x the resident memory of an uncompressed socket (docs/benchmark.md, "Sockets"),
to save bandwidth on a chat's frames of a few hundred bytes. The variable is read where the
keepalive settings are, from the environment of the server process: uvicorn's comes through
the Procfile's ``web`` line (``--ws-per-message-deflate``); daphne has no such option, and
autobahn under it accepts no offer unless told to, which ``accept_under_daphne`` does.
"""

import os

TRUE = {"1", "true", "yes", "on"}  # what uvicorn's command line takes for true


def enabled() -> bool:
    return os.environ.get("WS_PER_MESSAGE_DEFLATE", "false").strip().lower() in TRUE


def accept_under_daphne() -> None:
    """When enabled, have daphne's WebSocket factory accept a client's permessage-deflate
    offer. Runs when the ASGI application is imported, which daphne does before it builds
    its factory; under uvicorn it only sets an option of a class nobody uses."""
    if not enabled():
        return  # daphne (autobahn) then refuses every offer: nothing to change
    from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
    from daphne.ws_protocol import WebSocketFactory  # type: ignore[import-untyped]

    def accept(offers):
        for offer in offers:
            if isinstance(offer, PerMessageDeflateOffer):
                return PerMessageDeflateOfferAccept(offer)
        return None

    def reset_with_compression(factory) -> None:
        reset(factory)
        factory.perMessageCompressionAccept = accept

    reset = WebSocketFactory.resetProtocolOptions  # the factory's __init__ calls it
    WebSocketFactory.resetProtocolOptions = reset_with_compression
