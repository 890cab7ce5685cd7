"""The JSON API for rooms and tickets (docs/protocol.md, "Access to rooms", "Tickets").

- ``POST /api/rooms``: create a room (private unless ``"private": false``);
- ``GET /api/rooms/<room>/members``: a private room's owner and members (members only);
- ``POST /api/rooms/<room>/members``, ``DELETE /api/rooms/<room>/members/<username>``:
  add or remove a member (the owner only);
- ``POST /api/ws-tickets``: a single-use WebSocket ticket.

State changes need the session and Django's CSRF token (header ``X-CSRFToken``), as any
form of the site does. Tickets may instead be asked for with an API key (``Authorization:
Token <key>``): a program holding a key is not a browser that a forged page could drive,
so no CSRF token is needed there -- and one is required whenever the session is used.
The database writes go through ``chat.rooms``, which keeps the WebSocket side's mirror and
its sockets in step.
"""

import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from chat import apikeys, identity, protocol, rooms, throttle, tickets
from chat.models import Membership, Room


def error(status: int, detail: str, parameter: str | None = None) -> JsonResponse:
    body = {"error": detail} | ({"parameter": parameter} if parameter else {})
    return JsonResponse(body, status=status)


def json_body(request: HttpRequest) -> dict | None:
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def described(room: Room) -> dict:
    members = room.memberships.select_related("user").order_by("user__username")
    return {
        "name": room.name,
        "private": room.private,
        "owner": room.owner.get_username() if room.owner else None,
        "members": [membership.user.get_username() for membership in members],
    }


@require_POST
def create_room(request):
    """``POST /api/rooms`` ``{"name": "<room>", "private": true}``: 201, or 409 if taken."""
    if not request.user.is_authenticated:
        return error(401, "Log in first (session cookie).")
    body = json_body(request)
    if body is None:
        return error(400, "The body must be a JSON object.")
    name, private = body.get("name"), body.get("private", True)
    if not isinstance(name, str) or not protocol.is_valid_room(name):
        return error(400, "name must match [A-Za-z0-9_-]{1,64}.", "name")
    if not isinstance(private, bool):
        return error(400, "private must be true or false.", "private")
    try:
        room = rooms.create(name, request.user, private)
    except rooms.RoomExists:
        return error(409, f"The room {name!r} already exists.", "name")
    return JsonResponse(described(room), status=201)


def owned_room(request, name: str) -> Room | JsonResponse:
    """The private room ``name`` if the requester may manage it, else the error answer."""
    if not request.user.is_authenticated:
        return error(401, "Log in first (session cookie).")
    room = Room.objects.filter(name=name, private=True).select_related("owner").first()
    if room is None:
        return error(404, f"No private room {name!r}.")
    if room.owner_id != request.user.pk:
        return error(403, "Only the room's owner may do that.")
    return room


@require_http_methods(["GET", "POST"])
def room_members(request, room):
    """``GET``: the members (to members). ``POST {"username"}``: add one (the owner)."""
    if request.method == "GET":
        if not request.user.is_authenticated:
            return error(401, "Log in first (session cookie).")
        found = Room.objects.filter(name=room, private=True).select_related("owner").first()
        if found is None:
            return error(404, f"No private room {room!r}.")
        if not rooms.may_read(room, request.user):
            return error(403, "You are not a member of this room.")
        return JsonResponse(described(found))
    owned = owned_room(request, room)
    if isinstance(owned, JsonResponse):
        return owned
    body = json_body(request)
    username = body.get("username") if body else None
    if not isinstance(username, str):
        return error(400, "username is required.", "username")
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        return error(404, f"No user {username!r}.", "username")
    _, created = Membership.objects.get_or_create(room=owned, user=user)
    return JsonResponse(described(owned), status=201 if created else 200)


@require_http_methods(["DELETE"])
def room_member(request, room, username):
    """``DELETE``: remove a member (the owner); their sockets to the room close with 4403."""
    owned = owned_room(request, room)
    if isinstance(owned, JsonResponse):
        return owned
    if owned.owner and owned.owner.get_username() == username:
        return error(409, "The owner cannot be removed from their room.", "username")
    deleted, _ = Membership.objects.filter(room=owned, user__username=username).delete()
    if not deleted:
        return error(404, f"{username!r} is not a member of {room!r}.", "username")
    return HttpResponse(status=204)


def csrf_refused(request) -> str | None:
    """Django's CSRF check, run by hand: why it fails, or None. (The tickets view is exempt
    from the middleware because a request with an API key needs no token.)"""
    reasons: list[str] = []

    class Check(CsrfViewMiddleware):
        def _reject(self, request, reason):
            reasons.append(reason)
            return HttpResponse(status=403)

    check = Check(lambda request: HttpResponse())
    check.process_request(request)
    check.process_view(request, lambda request: HttpResponse(), (), {})
    return reasons[0] if reasons else None


@csrf_exempt
@require_POST
def ws_tickets(request):
    """``POST /api/ws-tickets``: ``201 {"ticket", "expires_in"}``, on an API key or on the
    session (with its CSRF token)."""
    key = apikeys.from_request(request)
    if key is not None:
        user, credential = key.user, identity.api_key_credential(key.pk)
    elif "Authorization" in request.headers:
        return error(401, "Unknown, revoked or malformed API key.")
    elif request.user.is_authenticated:
        if (reason := csrf_refused(request)) is not None:
            return error(403, f"CSRF check failed: {reason}")
        user = request.user
        credential = identity.session_credential(request.session.session_key or "")
    else:
        return error(401, "Log in first (session cookie), or send an API key.")
    if throttle.spend("tickets", str(user.pk), 60) > settings.CHAT_TICKETS_PER_MINUTE:
        return error(429, "Too many tickets; try again in a minute.")
    if key is not None:
        # The key's record outlives the tickets issued on it, so that the socket a ticket
        # opens finds it (chat.handshake, and the consumer's admission).
        identity.remember(credential, user.pk, user.get_username(), 2 * settings.CHAT_TICKET_TTL)
    else:
        request.session.modified = True  # saved with the response: its record is fresh
    ticket = tickets.issue(credential)
    return JsonResponse({"ticket": ticket, "expires_in": settings.CHAT_TICKET_TTL}, status=201)


def csrf_failure(request, reason=""):
    """``CSRF_FAILURE_VIEW``: a JSON 403 for the API, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return error(403, f"CSRF check failed: {reason}")
    return html_csrf_failure(request, reason)
