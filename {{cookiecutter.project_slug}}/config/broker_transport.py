"""kombu's Redis transport, with one Redis client per channel instead of one per command.

kombu's Redis channel makes a new ``redis.Redis`` for every synchronous operation
(publishing, taking a batch, acknowledging it). The connections come from the channel's
pool either way, but building a client copies redis-py's few hundred response callbacks:
about 40% of the CPU a worker child spent taking a queued batch (docs/benchmark.md, "What
the benchmark changed"). Here each channel keeps one client on its pool, built again only
if kombu replaces the pool (as it does in a forked child). A client holds no state of its
own between commands (the pool lends each command its connection), so this changes nothing
but the cost. ``CELERY_BROKER_TRANSPORT`` names this class for a ``redis://`` broker.
"""

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _sync_client: redis.Redis | None = None

    # celery-types' kombu stubs leave out the channel's private methods.
    def _create_client(self, asynchronous=False):
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()  # type: ignore[misc]
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel
