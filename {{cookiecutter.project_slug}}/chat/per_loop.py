"""One object per event loop, for state that belongs to the loop it runs on.

Tasks, timers, futures and ``redis.asyncio`` connections belong to the event loop that made
them, and die with it. A server runs one loop for its life, so there one per loop is one per
process. A test suite runs a loop per test: an object kept across loops would hold a closed
loop's timers and tasks (a hand-off once kept a dead timer that held every later batch).
So each loop gets an object of its own on first use, kept weakly by the loop: it goes when
the loop does, and nothing needs to notice that the loop changed.
"""

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """Like ``functools.cache`` on a function of no arguments, but one result per running
    event loop: decorate the function that makes the object, and each call returns the
    running loop's, made on first use."""

    def __init__(self, make: Callable[[], T]) -> None:
        self.make = make
        self.made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self) -> T:
        loop = asyncio.get_running_loop()
        if loop not in self.made:
            self.made[loop] = self.make()
        return self.made[loop]

    def clear(self) -> None:
        """Forget every loop's object: the next call on each loop makes a new one."""
        self.made.clear()
