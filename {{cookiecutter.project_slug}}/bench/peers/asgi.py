"""ASGI applications for the peer designs, served at the contract's ``/ws/rooms/<room>/``.

``bench.peers.asgi:sync_orm`` is design (a), ``bench.peers.asgi:async_orm`` design (b).
Run with ``DJANGO_SETTINGS_MODULE=bench.peers.settings``; the benchmark starts them with the
same server command as the project's own application.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peers.settings")
os.environ.setdefault("PROCESS_ROLE", "web")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from bench.peers.consumers import AsyncOrmConsumer, SyncOrmConsumer  # noqa: E402


def peer_application(consumer):
    routes = [re_path(r"^ws/rooms/(?P<room>[^/]*)/$", consumer.as_asgi())]
    return ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(routes))),
        }
    )


sync_orm = peer_application(SyncOrmConsumer)
async_orm = peer_application(AsyncOrmConsumer)
