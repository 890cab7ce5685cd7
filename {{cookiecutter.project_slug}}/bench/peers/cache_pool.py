"""One Redis connection pool per process for the peers' cache (their sessions).

Django's cache keeps a cache object, and so a connection pool, per async context, and lets
it go when a request finishes, which a WebSocket never does: a peer reading sessions on the
handshake would hold one Redis connection per socket (the project reads its identity records
through a bounded pool instead: docs/architecture.md). With this, every cache object of a
peer process draws on the same pool, so the sockets scenario compares what each socket costs,
not that leak; the bare consumer (e) then holds a few Redis clients, whatever its sockets.
"""

import functools

from redis import ConnectionPool


class SharedPool(ConnectionPool):
    @classmethod
    @functools.cache
    def from_url(cls, url, **kwargs):  # type: ignore[override]
        return ConnectionPool.from_url(url, **kwargs)
