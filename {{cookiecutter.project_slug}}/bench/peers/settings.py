"""Settings for the peer designs: the project's settings, with Django's usual connections.

A typical Channels project has no pool: each thread that queries opens its own connection,
kept for ``CONN_MAX_AGE`` seconds (persistent connections, the common advice for speed).
Their sessions share one Redis pool per process (``bench.peers.cache_pool``). Every value
still comes from the environment through ``config.settings``.
"""

from config.settings import *  # noqa: F403
from config.settings import CACHES, CHANNEL_LAYER, CHANNEL_LAYERS, DATABASES

DATABASES = {
    "default": {
        **DATABASES["default"],
        "CONN_MAX_AGE": 60,
        "OPTIONS": {
            key: value for key, value in DATABASES["default"]["OPTIONS"].items() if key != "pool"
        },
    }
}

# Their sessions through one Redis pool per process, not one per socket (bench.peers.cache_pool).
CACHES = {
    "default": {
        **CACHES["default"],
        "OPTIONS": {"pool_class": "bench.peers.cache_pool.SharedPool"},
    }
}

# The library's own pub/sub layer, as a typical project runs it: the project's subclass
# (config.channel_layer) adds only send_many, for a worker these designs do not have. On the
# core layer they run the project's, whose pools wait rather than fail in a burst.
if CHANNEL_LAYER == "redis_pubsub":
    CHANNEL_LAYERS = {
        "default": {
            **CHANNEL_LAYERS["default"],
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        }
    }
