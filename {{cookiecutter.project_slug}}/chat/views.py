from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Max
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from chat import protocol
from chat.forms import RoomForm
from chat.history import BadParameter, Query, page
from chat.models import Message

RECENT_ROOMS = 20


def home(request):
    """The room list, and a form to pick or create a room by name."""
    if not request.user.is_authenticated:
        return render(request, "chat/home.html")
    form = RoomForm(request.GET if "room" in request.GET else None)
    if form.is_valid():
        return redirect("room", room=form.cleaned_data["room"])
    rooms = (
        Message.objects.values("room")
        .annotate(last=Max("sent_at"))
        .order_by("-last")[:RECENT_ROOMS]
    )
    return render(request, "chat/home.html", {"form": form, "rooms": rooms})


@login_required
def room(request, room):
    """The room page: chat.js loads the history over HTTP and talks on the WebSocket."""
    if not protocol.is_valid_room(room):
        raise Http404("No such room: names are letters, digits, - and _ only.")
    config = {
        "room": room,
        "username": request.user.get_username(),
        "maxBody": settings.CHAT_MAX_BODY,
    }
    return render(request, "chat/room.html", {"room": room, "chat_config": config})


@require_GET
def room_messages(request, room):
    """``GET /api/rooms/<room>/messages``: history, with the user's own pending messages."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Log in first (session cookie)."}, status=401)
    if not protocol.is_valid_room(room):
        return bad_parameter(BadParameter("room", "room must match [A-Za-z0-9_-]{1,64}."))
    try:
        query = Query.from_params(request.GET)
    except BadParameter as error:
        return bad_parameter(error)
    result = page(room, request.user.pk, query, request.headers.get("X-Write-Receipts", ""))
    response = JsonResponse({"messages": result.messages, "next": result.next})
    response["X-Consistency"] = result.consistency
    return response


def bad_parameter(error: BadParameter) -> JsonResponse:
    return JsonResponse({"error": error.detail, "parameter": error.parameter}, status=400)
