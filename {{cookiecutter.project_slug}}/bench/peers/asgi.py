"""ASGI applications for the peer designs, served at the contract's ``/ws/rooms/<room>/``.

``sync_orm`` is design (a), ``async_orm`` designs (b), (g) and (h) (their settings differ),
``bare`` (e) and ``manual_close`` (f). Run with ``DJANGO_SETTINGS_MODULE=bench.peers.settings``
(or ``bench.peers.pooled``); the benchmark starts them with the same server command as the
project's own application.
"""

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peers.settings")
os.environ.setdefault("PROCESS_ROLE", "web")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from bench.peers.consumers import (  # noqa: E402
    AsyncOrmConsumer,
    BareConsumer,
    ManualCloseConsumer,
    SyncOrmConsumer,
)
from config import compression  # noqa: E402

compression.accept_under_daphne()  # as config.asgi does: the same server settings


def peer_application(consumer):
    routes = [re_path(r"^ws/rooms/(?P<room>[^/]*)/$", consumer.as_asgi())]
    return with_asgi_threads(
        ProtocolTypeRouter(
            {
                "http": django_asgi_app,
                "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(routes))),
            }
        )
    )


def with_asgi_threads(application):
    """``ASGI_THREADS`` sizes the thread pool ``database_sync_to_async(thread_sensitive=False)``
    runs on (the event loop's default executor), as production sets it. Daphne reads it;
    uvicorn has no such setting, so the peers apply it themselves, as daphne does."""
    threads = os.environ.get("ASGI_THREADS")
    sized = False

    async def app(scope, receive, send):
        nonlocal sized
        if threads and not sized:
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(int(threads)))
            sized = True
        return await application(scope, receive, send)

    return app


sync_orm = peer_application(SyncOrmConsumer)
async_orm = peer_application(AsyncOrmConsumer)
bare = peer_application(BareConsumer)
manual_close = peer_application(ManualCloseConsumer)
