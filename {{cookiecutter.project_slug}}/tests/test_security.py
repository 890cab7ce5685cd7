"""Safe defaults, in process: the Content-Security-Policy header, logging out without an
error page, the failed-login budgets, who may read /metrics, secrets kept out of output.
"""

import io
import ipaddress
import random

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from support.processes import refusing_port

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_response_carries_the_content_security_policy(client, settings):
    for path in ("/", "/accounts/login/", "/api/rooms/lobby/messages", "/healthz"):
        policy = client.get(path)["Content-Security-Policy"]
        assert policy == settings.CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_logging_out_without_next_redirects_home(make_user):
    browser = Client()
    browser.force_login(make_user().user)
    response = browser.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert "_auth_user_id" not in browser.session


def an_address() -> str:
    """A client address of this test's own: budgets live in Redis across test runs."""
    return str(ipaddress.IPv4Address(random.getrandbits(24) | (10 << 24)))


def log_in(client: Client, username: str, password: str, address: str):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_failed_logins_are_budgeted_per_username(make_user, settings):
    """Past the budget even the right password is refused (a guess is not confirmed either);
    the count is per username, across addresses, and a success clears it."""
    settings.LOGIN_FAILURE_LIMIT_PER_USER = 2
    ann, bob = make_user(), make_user()
    client = Client()
    assert log_in(client, ann.user.username, "secret-pass-123", an_address()).status_code == 302
    for _ in range(2):
        response = log_in(client, ann.user.username, "wrong", an_address())
        assert response.status_code == 200 and b"Too many" not in response.content
    refused = log_in(client, ann.user.username, "secret-pass-123", an_address())
    assert refused.status_code == 200 and b"Too many failed logins" in refused.content
    assert log_in(Client(), bob.user.username, "secret-pass-123", an_address()).status_code == 302


def test_failed_logins_are_budgeted_per_address(make_user, settings):
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 2
    users = [make_user() for _ in range(3)]
    client, address = Client(), an_address()
    for user in users[:2]:
        assert b"Too many" not in log_in(client, user.user.username, "wrong", address).content
    refused = log_in(client, users[2].user.username, "secret-pass-123", address)
    assert b"Too many failed logins" in refused.content
    elsewhere = log_in(client, users[2].user.username, "secret-pass-123", an_address())
    assert elsewhere.status_code == 302


@pytest.mark.parametrize(
    ("allowed", "token", "address", "authorization", "status"),
    [
        ([], "", "127.0.0.1", "", 404),  # neither set: off, even from the machine itself
        (["10.1.0.0/16"], "", "10.1.2.3", "", 200),
        (["10.1.0.0/16"], "", "10.2.0.1", "", 404),
        ([], "s3cret-token", "203.0.113.5", "Bearer s3cret-token", 200),
        ([], "s3cret-token", "203.0.113.5", "Bearer wrong", 404),
        ([], "s3cret-token", "203.0.113.5", "s3cret-token", 404),
    ],
)
def test_metrics_answer_only_where_the_operator_allows(
    client, settings, allowed, token, address, authorization, status
):
    settings.METRICS_ALLOWED_IPS = [ipaddress.ip_network(a) for a in allowed]
    settings.METRICS_TOKEN = token
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/metrics", REMOTE_ADDR=address, **headers)
    assert response.status_code == status
    if status == 200:
        assert b"chat_sockets_connected" in response.content


def test_preflight_never_prints_the_redis_password(settings):
    settings.REDIS_URL = "redis://:hunter2-not-printed@127.0.0.1:6379/15"
    out = io.StringIO()
    call_command("preflight", stdout=out)  # this Redis takes any password
    assert "redis://:***@127.0.0.1:6379/15" in out.getvalue()

    refusing, port = refusing_port()
    settings.REDIS_URL = f"redis://:hunter2-not-printed@127.0.0.1:{port}/0"
    with refusing, pytest.raises(CommandError) as failure:
        call_command("preflight", stdout=out)
    assert "redis://:***@127.0.0.1:" in str(failure.value)
    assert "hunter2" not in str(failure.value) + out.getvalue()


def test_error_pages_hide_connection_strings(settings):
    """With DEBUG on, Django's error page lists the settings: not the passwords in URLs."""
    from django.views.debug import get_default_exception_reporter_filter

    settings.REDIS_URL = settings.CELERY_BROKER_URL = "redis://:hunter2@redis:6379/0"
    shown = repr(get_default_exception_reporter_filter().get_safe_settings())
    assert "hunter2" not in shown
    assert "REDIS_URL" in shown and "CACHES" in shown and "CHANNEL_LAYERS" in shown
