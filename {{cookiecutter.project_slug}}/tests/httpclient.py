"""The HTTP side of a browser, for end-to-end tests: cookies, Django's CSRF token, JSON.

It talks to a real server process as a browser would: it logs in through the login form,
keeps the ``sessionid`` and ``csrftoken`` cookies, and sends the token back with every
request that changes state (a form field, or the ``X-CSRFToken`` header for the JSON API).
"""

import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace

from django.conf import settings

PASSWORD = "secret-pass-123"  # tests/conftest.py's log_in


class Browser:
    def __init__(self, base: str):
        self.base = base.replace("ws://", "http://")
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    @property
    def session(self) -> SimpleNamespace:
        """What ``tests.wsclient.Client`` takes: the session cookie to show."""
        return SimpleNamespace(
            cookie=f"{settings.SESSION_COOKIE_NAME}={self.cookie(settings.SESSION_COOKIE_NAME)}"
        )

    def request(self, method: str, path: str, data: bytes | None = None, headers=None):
        """``(status, body bytes)``; redirects are followed, as a browser does."""
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers or {}
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read()

    def csrf_token(self) -> str:
        if self.cookie("csrftoken") is None:
            self.request("GET", "/accounts/login/")  # any page with a form sets it
        token = self.cookie("csrftoken")
        assert token, "no CSRF cookie"
        return token

    def post_form(self, path: str, fields: dict):
        data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": self.csrf_token()})
        return self.request("POST", path, data.encode())

    def log_in(self, username: str, password: str = PASSWORD) -> "Browser":
        self.csrf_token()
        status, _ = self.post_form("/accounts/login/", {"username": username, "password": password})
        assert status == 200 and self.cookie(settings.SESSION_COOKIE_NAME), "login failed"
        return self

    def call(self, method: str, path: str, body=None, csrf: bool = True) -> tuple[int, dict]:
        """A JSON API call: ``(status, JSON body)`` (``{}`` when there is none)."""
        headers = {"Content-Type": "application/json"}
        if csrf:
            headers["X-CSRFToken"] = self.csrf_token()
        data = None if body is None else json.dumps(body).encode()
        status, raw = self.request(method, path, data, headers)
        return status, json.loads(raw) if raw else {}
