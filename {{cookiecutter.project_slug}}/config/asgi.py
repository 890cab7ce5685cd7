"""The ASGI application: HTTP goes to Django, WebSockets to Channels consumers.

The WebSocket stack starts with ``chat.handshake.HandshakeGate``: it checks the ``Origin``
and authenticates from Redis alone (a session's identity record, or a ticket), and answers
a refusal itself, before any consumer, channel or channel-layer subscription exists. So a
process that serves only WebSockets never opens a PostgreSQL connection, and a refused
handshake costs no more than its checks. HTTP views use the web role's bounded pool.

ASGI servers do not run Django's system checks: the security checks run here, so that the
server refuses to start with, say, a published SECRET_KEY and DEBUG off (ops/checks.py).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("PROCESS_ROLE", "web")

from django.core.asgi import get_asgi_application

# Django must be set up before anything imports models or reads settings.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core import checks  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from chat.handshake import HandshakeGate  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402
from config import compression  # noqa: E402

if errors := [e for e in checks.run_checks(tags=[checks.Tags.security]) if e.is_serious()]:
    raise ImproperlyConfigured("\n".join(str(error) for error in errors))

compression.accept_under_daphne()  # uvicorn's is on its command line (Procfile)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": HandshakeGate(URLRouter(websocket_urlpatterns)),  # type: ignore[arg-type]
    }
)
