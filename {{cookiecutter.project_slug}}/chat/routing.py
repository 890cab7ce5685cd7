from django.urls import re_path

from chat.consumers import RoomConsumer

# The room name is validated by the consumer, so a bad one is refused at the handshake
# (HTTP 403) rather than failing to route.
# (django-stubs types a route's target as a view; Channels routes to ASGI applications.)
websocket_urlpatterns = [
    re_path(r"^ws/rooms/(?P<room>[^/]*)/$", RoomConsumer.as_asgi()),  # type: ignore[arg-type]
]
