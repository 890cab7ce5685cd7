"""The ids one socket sent lately, each with the outcome of its hand-off.

A client resends every message it got no ``message.accepted`` for, with the same id: after
a reconnect, or simply because the answer is slow. A resend is never fanned out or handed
off twice; it gets the first send's answer instead: the receipt at once if the hand-off
succeeded, or, while the hand-off is still in flight, whatever it resolves to (the receipt,
or ``unavailable``). A failed hand-off leaves no trace here, so the next resend is a fresh
send.
"""

import asyncio
from collections import OrderedDict

# The outcome of a hand-off: the receipt, or None if the broker did not take the message.
Outcome = asyncio.Future[str | None]


class RecentIds:
    """The last ``size`` ids of one socket, oldest forgotten first."""

    def __init__(self, size: int):
        self.size = size
        self._outcomes: OrderedDict[str, Outcome] = OrderedDict()

    def __contains__(self, message_id: str) -> bool:
        return message_id in self._outcomes

    def begin(self, message_id: str) -> Outcome:
        """A hand-off of ``message_id`` starts: the future its result must be set on."""
        outcome: Outcome = asyncio.get_running_loop().create_future()
        outcome.add_done_callback(lambda done: self._forget_if_failed(message_id, done))
        self._outcomes[message_id] = outcome
        self._outcomes.move_to_end(message_id)
        while len(self._outcomes) > self.size:
            self._outcomes.popitem(last=False)
        return outcome

    async def outcome(self, message_id: str) -> str | None:
        """The receipt of ``message_id``'s hand-off, waiting for it if it is in flight."""
        outcome = self._outcomes.get(message_id)
        if outcome is None:
            return None
        # Shielded: a resend that gives up waiting (its socket closed) leaves the shared
        # outcome alone.
        return await asyncio.shield(outcome)

    def _forget_if_failed(self, message_id: str, outcome: Outcome) -> None:
        failed = outcome.cancelled() or outcome.result() is None
        if failed and self._outcomes.get(message_id) is outcome:
            del self._outcomes[message_id]
