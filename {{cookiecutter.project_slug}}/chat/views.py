from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Max
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from chat import apikeys, protocol, rooms
from chat.forms import RoomForm
from chat.history import BadParameter, Query, page
from chat.models import Message, Room

RECENT_ROOMS = 20


def home(request):
    """The room list, and a form to pick or create a room by name."""
    if not request.user.is_authenticated:
        return render(request, "chat/home.html")
    form = RoomForm(request.GET if "room" in request.GET else None)
    if form.is_valid():
        return redirect("room", room=form.cleaned_data["room"])
    mine = Room.objects.filter(private=True, memberships__user=request.user).order_by("name")
    others_private = Room.objects.filter(private=True).exclude(memberships__user=request.user)
    recent = (
        Message.objects.exclude(room__in=others_private.values("name"))
        .values("room")
        .annotate(last=Max("sent_at"))
        .order_by("-last")[:RECENT_ROOMS]
    )
    context = {"form": form, "rooms": recent, "private_rooms": mine}
    return render(request, "chat/home.html", context)


@login_required
def room(request, room):
    """The room page: chat.js loads the history over HTTP and talks on the WebSocket."""
    if not protocol.is_valid_room(room):
        raise Http404("No such room: names are letters, digits, - and _ only.")
    if not rooms.may_read(room, request.user):
        return render(request, "chat/not_a_member.html", {"room": room}, status=403)
    # Saved with the response: the session's identity record, which the WebSocket
    # handshake reads, is rewritten with a fresh expiry (chat.sessions).
    request.session.modified = True
    private = Room.objects.filter(name=room, private=True).first()
    config = {
        "room": room,
        "username": request.user.get_username(),
        "maxBody": settings.CHAT_MAX_BODY,
        "private": private is not None,
        "owner": private is not None and private.owner_id == request.user.pk,
    }
    return render(request, "chat/room.html", {"room": room, "chat_config": config})


@require_GET
def room_messages(request, room):
    """``GET /api/rooms/<room>/messages``: history, with the user's own pending messages."""
    key = None if request.user.is_authenticated else apikeys.from_request(request)
    user = key.user if key is not None else request.user
    if not user.is_authenticated:
        return JsonResponse({"error": "Log in first (session cookie, or API key)."}, status=401)
    if not protocol.is_valid_room(room):
        return bad_parameter(BadParameter("room", "room must match [A-Za-z0-9_-]{1,64}."))
    if not rooms.may_read(room, user):
        return JsonResponse({"error": "You are not a member of this room."}, status=403)
    try:
        query = Query.from_params(request.GET)
    except BadParameter as error:
        return bad_parameter(error)
    result = page(room, user.pk, query, request.headers.get("X-Write-Receipts", ""))
    response = JsonResponse({"messages": result.messages, "next": result.next})
    response["X-Consistency"] = result.consistency
    if result.unknown:  # docs/protocol.md: lost before it was stored, to be resent
        response["X-Receipts-Unknown"] = ",".join(result.unknown)
    return response


def bad_parameter(error: BadParameter) -> JsonResponse:
    return JsonResponse({"error": error.detail, "parameter": error.parameter}, status=400)
