"""The demo's server-rendered pages and its static files, through Django's test client."""

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def browser_of(make_user):
    def log_in():
        client = Client()
        client.force_login(make_user().user)
        return client

    return log_in


def test_pages_need_a_login(client):
    response = client.get("/rooms/lobby/")
    assert response.status_code == 302
    assert response["Location"].startswith(f"{settings.LOGIN_URL}?next=/rooms/lobby/")
    assert b"Log in" in client.get("/").content


def test_the_room_form_takes_only_names_the_websocket_accepts(browser_of):
    client = browser_of()
    assert client.get("/?room=lobby-2_b").headers["Location"] == "/rooms/lobby-2_b/"
    for bad in ("two words", "x" * 65, "café", "a/b"):
        response = client.get("/", {"room": bad})
        assert response.status_code == 200, bad
        assert b'id="room-error"' in response.content, bad
    assert client.get("/rooms/no%20spaces/").status_code == 404


def test_the_room_page_hands_its_settings_to_the_script(browser_of):
    """In data- attributes: the Content-Security-Policy allows no inline script."""
    client = browser_of()
    response = client.get("/rooms/lobby/")
    assert response.status_code == 200
    config = response.context["chat_config"]
    username = response.wsgi_request.user.get_username()
    assert config == {
        "room": "lobby",
        "username": username,
        "maxBody": settings.CHAT_MAX_BODY,
        "private": False,
        "owner": False,
    }
    assert (
        f'<div id="chat" data-room="lobby" data-username="{username}"\n'
        f'     data-max-body="{settings.CHAT_MAX_BODY}">'
    ).encode() in response.content
    assert b"/static/chat/chat.js" in response.content
    assert b"<script>" not in response.content and b"<style" not in response.content


def test_whitenoise_serves_the_script_without_collectstatic(client):
    response = client.get("/static/chat/chat.js")
    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
    assert b"textContent" in b"".join(response.streaming_content)
