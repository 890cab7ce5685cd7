"""Settings for design (g): the project's settings, with Django's pool in the ASGI process.

Django 5.1+ pools connections per process (``OPTIONS["pool"]``); this is the project's own
pool, sized as the article this benchmark answers sizes it (``max_size`` 20), in a process
whose consumers query the database: each process holds up to 20 connections.
"""

from bench.peers import settings as peers
from config.settings import *  # noqa: F403
from config.settings import DATABASES

POOL_SIZE = 20

DATABASES = {
    "default": {
        **DATABASES["default"],
        "OPTIONS": {
            **DATABASES["default"]["OPTIONS"],
            "pool": {**DATABASES["default"]["OPTIONS"]["pool"], "max_size": POOL_SIZE},
        },
    }
}

CHANNEL_LAYERS = peers.CHANNEL_LAYERS  # the library's own, as the other peers run it
