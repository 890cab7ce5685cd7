from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from chat import protocol
from chat.history import BadParameter, Query, page


def home(request):
    return render(request, "chat/home.html")


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
