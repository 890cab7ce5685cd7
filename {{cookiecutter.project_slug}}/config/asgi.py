"""The ASGI application: HTTP goes to Django, WebSockets to Channels consumers.

The WebSocket stack authenticates from the Redis-backed session alone
(``chat.identity``), so a process that serves only WebSockets never opens a PostgreSQL
connection. HTTP views use the web role's bounded pool.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("PROCESS_ROLE", "web")

from django.core.asgi import get_asgi_application

# Django must be set up before anything imports models or reads settings.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from chat.identity import SessionIdentityMiddleware  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            SessionIdentityMiddleware(URLRouter(websocket_urlpatterns))
        ),
    }
)
