"""The demo chat in a real browser: Debian's Chromium, driven by Playwright, against the real
web and worker processes started from the Procfile.

Playwright never downloads a browser here: it launches /usr/bin/chromium (``apt-get install
chromium``; CHROMIUM=/path overrides). Without it the tests are skipped, except on CI
(CI=true), where a missing browser is a failure. Screenshots go to BROWSER_ARTIFACTS_DIR, or
to pytest's temporary directory; the path is printed.

Playwright's synchronous API keeps an event loop running on this thread, and Django refuses
the ORM under a running loop: so users are created before the browser starts, and the tests
check storage through the history API, as a client would.
"""

import json
import os
import signal
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.processes import database_url, start_web, start_worker

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "secret-pass-123"  # tests/conftest.py's log_in
WAIT_MS = 60_000  # generous: CI boxes are slow and shared


@pytest.fixture
def env(persist_queue):
    return {"DATABASE_URL": database_url(connection.settings_dict), "REDIS_URL": settings.REDIS_URL}


@pytest.fixture
def processes(env, tmp_path):
    """Start Procfile processes on demand; all of them stop after the test."""
    started = []

    def web(port=None, name="web"):
        process, port = start_web(env, tmp_path / f"{name}.log", port)
        started.append(process)
        return process, port

    def worker():
        process = start_worker(env, tmp_path / "worker.log")
        started.append(process)
        return process

    yield type("Processes", (), {"web": staticmethod(web), "worker": staticmethod(worker)})
    for process in started:
        process.stop()


@pytest.fixture
def browser(ann, bob):
    """Chromium, started after the users exist (see the module docstring)."""
    if not CHROMIUM.exists():
        reason = f"No Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM=)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}. CI must run the browser tests.")
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts(tmp_path_factory) -> Path:
    configured = os.environ.get("BROWSER_ARTIFACTS_DIR")
    path = Path(configured) if configured else tmp_path_factory.mktemp("browser-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_in(browser, base: str, user):
    """A fresh browser context, logged in through the login form."""
    page = browser.new_context().new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", user.user.get_username())
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def open_room(page, base: str, room: str):
    page.goto(f"{base}/rooms/{room}/")
    expect_connected(page)


def expect_connected(page):
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_have_attribute("data-state", "connected")


def send(page, body: str):
    page.fill("#body", body)
    page.click("#send-form button")
    return message(page, body)


def message(page, body: str):
    """The <li> whose body contains ``body``."""
    return page.locator("#messages li").filter(has=page.locator(".body", has_text=body))


def expect_state(item, state: str):
    from playwright.sync_api import expect

    expect(item).to_have_attribute("data-state", state)


def history(base: str, page, room: str) -> list[dict]:
    """The room's stored history, read over HTTP with the page's session."""
    name = settings.SESSION_COOKIE_NAME
    session = next(c["value"] for c in page.context.cookies() if c["name"] == name)
    request = urllib.request.Request(
        f"{base}/api/rooms/{room}/messages?limit=200", headers={"Cookie": f"{name}={session}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["messages"]


def screenshot(page, artifacts: Path, name: str) -> None:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"\nscreenshot: {path}")


def test_two_users_see_each_other_live_and_bodies_stay_text(
    processes, browser, ann, bob, artifacts
):
    from playwright.sync_api import expect

    processes.worker()
    _, port = processes.web()
    base = f"http://127.0.0.1:{port}"
    room = f"browser-{uuid.uuid4().hex[:8]}"

    ann_page = log_in(browser, base, ann)
    ann_page.fill("#id_room", "not a room!")
    ann_page.click("#room-form button")
    expect(ann_page.locator("#room-error")).to_contain_text("Letters, digits")
    ann_page.fill("#id_room", room)
    ann_page.click("#room-form button")
    ann_page.wait_for_url(f"{base}/rooms/{room}/")
    expect_connected(ann_page)
    bob_page = log_in(browser, base, bob)
    open_room(bob_page, base, room)

    hello = send(ann_page, "hello Bob")
    expect(message(bob_page, "hello Bob")).to_have_count(1)
    expect(message(bob_page, "hello Bob").locator(".author")).to_have_text(ann.user.username)
    expect_state(hello, "stored")  # ✓✓: message.persisted reached Ann
    expect(hello.locator(".ticks")).to_have_text("✓✓")
    expect(message(bob_page, "hello Bob").locator(".ticks")).to_have_text("")  # not Bob's

    hostile = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    expect_state(send(bob_page, hostile), "stored")
    for page in (ann_page, bob_page):
        expect(message(page, hostile).locator(".body")).to_have_text(hostile)
        assert page.locator("#messages img, #messages script").count() == 0
        assert page.evaluate("window.pwned") is None
    # The same body from the history API is text too.
    ann_page.reload()
    expect_connected(ann_page)
    expect(message(ann_page, hostile).locator(".body")).to_have_text(hostile)
    expect(message(ann_page, "hello Bob")).to_have_count(1)
    assert ann_page.locator("#messages img, #messages script").count() == 0
    assert ann_page.evaluate("window.pwned") is None

    ann_page.goto(f"{base}/")
    expect(ann_page.locator("#rooms")).to_contain_text(room)
    bob_page.bring_to_front()
    screenshot(bob_page, artifacts, "two-users")


def test_a_reload_right_after_sending_shows_the_message_while_the_worker_is_stopped(
    processes, browser, ann, bob
):
    _, port = processes.web()  # no worker yet: nothing can be stored
    base = f"http://127.0.0.1:{port}"
    room = f"reload-{uuid.uuid4().hex[:8]}"
    page = log_in(browser, base, ann)
    open_room(page, base, room)

    mine = send(page, "sent just before a reload")
    expect_state(mine, "accepted")  # ✓: the broker has it, PostgreSQL does not
    message_id = mine.get_attribute("data-id")

    with page.expect_response(lambda r: f"/api/rooms/{room}/messages" in r.url) as reply:
        page.reload()
    # The page sent its receipt, and the history API answered with the pending message.
    assert reply.value.request.header_value("X-Write-Receipts")
    assert reply.value.header_value("X-Consistency") == "pending"
    assert [(m["id"], m["persisted"]) for m in reply.value.json()["messages"]] == [
        (message_id, False)
    ]
    reloaded = message(page, "sent just before a reload")
    expect_state(reloaded, "accepted")
    assert reloaded.get_attribute("data-id") == message_id

    processes.worker()
    expect_state(reloaded, "stored")  # the page asks again with its receipt, and hears
    assert [(m["id"], m["persisted"]) for m in history(base, page, room)] == [(message_id, True)]
    page.reload()
    expect_state(message(page, "sent just before a reload"), "stored")


def test_the_page_recovers_from_a_dropped_socket_resends_and_catches_up(
    processes, browser, ann, bob, artifacts
):
    """Ann's web process dies. While it is down, Ann writes a message (it waits, unsent) and
    Bob, on another web process, posts one that Ann's socket never sees. When the process
    is back, Ann's page reconnects by itself, resends her message with its id, and fetches
    Bob's from the history API (after=)."""
    from playwright.sync_api import expect

    processes.worker()
    ann_web, ann_port = processes.web(name="web-ann")
    _, bob_port = processes.web(name="web-bob")
    ann_base, bob_base = f"http://127.0.0.1:{ann_port}", f"http://127.0.0.1:{bob_port}"
    room = f"drop-{uuid.uuid4().hex[:8]}"
    ann_page, bob_page = log_in(browser, ann_base, ann), log_in(browser, bob_base, bob)
    open_room(ann_page, ann_base, room)
    open_room(bob_page, bob_base, room)
    expect_state(send(ann_page, "before the drop"), "stored")

    ann_web.stop(signal.SIGKILL)
    expect(ann_page.locator("#status")).to_have_attribute("data-state", "reconnecting")
    offline = send(ann_page, "written while offline")
    expect_state(offline, "sending")
    offline_id = offline.get_attribute("data-id")
    expect_state(send(bob_page, "posted while Ann was away"), "stored")

    processes.web(port=ann_port, name="web-ann-restarted")
    expect_connected(ann_page)
    expect_state(offline, "stored")
    expect(message(ann_page, "posted while Ann was away")).to_have_count(1)
    expect(message(bob_page, "written while offline")).to_have_count(1)
    screenshot(ann_page, artifacts, "after-reconnect")

    stored = [m for m in history(ann_base, ann_page, room) if m["body"] == "written while offline"]
    assert [(m["id"], m["persisted"]) for m in stored] == [(offline_id, True)]
    expect(ann_page.locator("#messages li")).to_have_count(3)
