from django import forms
from django.core.validators import RegexValidator

from chat import protocol


class RoomForm(forms.Form):
    """Pick or create a room: any name the WebSocket would accept (docs/protocol.md)."""

    room = forms.CharField(
        max_length=64,
        validators=[
            RegexValidator(
                rf"^{protocol.ROOM_PATTERN.pattern}\Z",
                "Letters, digits, - and _ only, at most 64 characters.",
            )
        ],
    )
