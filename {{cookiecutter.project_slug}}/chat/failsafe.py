"""The last line of defence of a socket: a frame the server fails on is answered, not fatal.

``chat.protocol`` refuses every malformed frame with a ProtocolError, and the consumer
answers it. Should a frame still find a way to raise something else, an exception that
escapes a consumer's handler ends the consumer: the socket drops, and a client that resends
the same frame after reconnecting (as the contract asks of unanswered ones) drops it again.
So the handler of client frames is wrapped here: the failure is logged and counted, the
sender gets an ``invalid_frame`` error with the detail below, and the socket goes on.
"""

import functools
import logging

from channels.exceptions import StopConsumer

from chat import protocol
from ops import metrics

logger = logging.getLogger(__name__)

DETAIL = "The server could not handle this frame."


def answered(receive):
    """Wrap a consumer's ``receive`` so that no client frame can end the consumer."""

    @functools.wraps(receive)
    async def guarded(consumer, text_data=None, bytes_data=None):
        try:
            await receive(consumer, text_data, bytes_data)
        except StopConsumer:
            raise
        except Exception:
            logger.exception("A client frame failed; answered with %s", protocol.INVALID_FRAME)
            metrics.FRAME_FAILURES.inc()
            try:
                await consumer.send_frame(protocol.error_frame(protocol.INVALID_FRAME, DETAIL))
            except Exception:  # the socket itself is gone: disconnect() follows
                logger.debug("Could not answer the failed frame", exc_info=True)

    return guarded
