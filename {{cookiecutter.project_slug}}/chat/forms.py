from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from chat import protocol, throttle


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


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, with a budget of failed logins per username and per address.

    Past either budget, logging in is refused without checking the password (so a guess
    cannot be confirmed either) until the window ends: ``LOGIN_FAILURE_LIMIT_PER_USER``
    failures per username, ``LOGIN_FAILURE_LIMIT_PER_ADDRESS`` per client address, each in
    ``LOGIN_FAILURE_WINDOW`` seconds. A successful login clears its username's count. The
    per-user budget protects a password from a botnet; the price, paid by every such
    scheme, is that a stranger can lock a username out for one window.
    """

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed logins. Try again in a few minutes.",
    }

    def budgets(self) -> list[tuple[str, str, int]]:
        username = self.cleaned_data.get("username") or ""
        address = self.request.META.get("REMOTE_ADDR", "") if self.request else ""
        return [
            ("login-user", throttle.whose(username), settings.LOGIN_FAILURE_LIMIT_PER_USER),
            ("login-address", address, settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS),
        ]

    def clean(self):
        budgets = self.budgets()
        if any(throttle.spent(what, who) >= limit for what, who, limit in budgets):
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            for what, who, _ in budgets:
                throttle.spend(what, who, settings.LOGIN_FAILURE_WINDOW)
            raise
        what, who, _ = budgets[0]
        throttle.reset(what, who)
        return cleaned
