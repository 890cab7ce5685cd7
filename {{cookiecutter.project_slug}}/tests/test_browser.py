"""The demo chat in a real browser: Debian's Chromium, driven by Playwright, against the real
web and worker processes started from the Procfile.

Playwright never downloads a browser here: it launches /usr/bin/chromium (``apt-get install
chromium``; CHROMIUM=/path overrides). Without it the tests are skipped, except on CI
(CI=true), where a missing browser is a failure. Screenshots go to BROWSER_ARTIFACTS_DIR, or
to pytest's temporary directory; the path is printed.

Playwright's synchronous API keeps an event loop running on this thread, and Django refuses
the ORM under a running loop: so users are created before the browser starts, and the tests
check storage through the history API, as a client would.

Every page runs under the project's Content-Security-Policy (ops/csp.py), and every browser
test fails if Chromium reports a single violation of it: each browser context forwards the
page's ``securitypolicyviolation`` events to the test through a Playwright binding (which
the policy cannot block).
"""

import json
import os
import signal
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from chat import redis_store
from support.processes import child_env, start_web, start_worker, wait_for
from tests import broker

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
    return child_env()


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


# Forwards each CSP violation of a page to the test (an init script runs before the page's
# own scripts, in every document of the context).
REPORT_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const report = event.violatedDirective + " blocked " + event.blockedURI;
  window.cspViolations.push(report);
  if (window.reportCspViolation) window.reportCspViolation(report);
});
"""


class Chromium:
    """The browser, whose contexts report every CSP violation into ``violations``."""

    def __init__(self, browser):
        self.browser = browser
        self.violations: list[str] = []

    def new_context(self):
        context = self.browser.new_context()
        context.expose_binding(
            "reportCspViolation", lambda source, report: self.violations.append(report)
        )
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        return context


@pytest.fixture
def carol(make_user):
    return make_user()


@pytest.fixture
def browser(ann, bob):
    """Chromium, started after the users exist (see the module docstring). The test fails if
    any page it opened reported a Content-Security-Policy violation."""
    if not CHROMIUM.exists():
        reason = f"No Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM=)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}. CI must run the browser tests.")
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        chromium = Chromium(
            playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        )
        yield chromium
        chromium.browser.close()
    assert chromium.violations == [], "Content-Security-Policy violations"


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


@pytest.mark.parametrize("reload", [True, False], ids=["after-a-reload", "same-socket"])
def test_a_message_lost_after_acceptance_is_resent_by_the_page(
    processes, browser, ann, redis_client, persist_queue, reload
):
    """The batch and the pending copy vanish (as with a Redis restarted without
    persistence): the history API names the receipt unknown, the page resends the message
    from its outbox with the same id, and it is stored once. Without a reload the page
    hears it from its own poll, and must resend over a fresh socket: the one that accepted
    the id would only repeat the first receipt."""
    _, port = processes.web()  # no worker yet: the batch waits in the broker
    base = f"http://127.0.0.1:{port}"
    room = f"lost-{uuid.uuid4().hex[:8]}"
    page = log_in(browser, base, ann)
    open_room(page, base, room)
    mine = send(page, "lost after acceptance")
    expect_state(mine, "accepted")
    message_id = mine.get_attribute("data-id")

    member = redis_store.pending_member(ann.user.pk, message_id)
    assert broker.length(persist_queue) == 1  # its batch, which the broker now loses
    broker.purge(persist_queue)
    assert redis_client.delete(redis_store.pending_message(member)) == 1

    def names_it_unknown(response) -> bool:
        return (
            f"/api/rooms/{room}/messages" in response.url
            and response.header_value("X-Receipts-Unknown") == message_id
        )

    with page.expect_response(names_it_unknown, timeout=30_000):
        if reload:
            page.reload()
    wait_for(lambda: broker.length(persist_queue), 30, "the message to be handed off again")
    processes.worker()
    expect_state(message(page, "lost after acceptance"), "stored")
    assert [(m["id"], m["persisted"]) for m in history(base, page, room)] == [(message_id, True)]


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
    for n in range(5):
        expect_state(send(bob_page, f"posted while Ann was away {n}"), "stored")

    processes.web(port=ann_port, name="web-ann-restarted")
    expect_connected(ann_page)
    expect_state(offline, "stored")
    for n in range(5):
        expect(message(ann_page, f"posted while Ann was away {n}")).to_have_count(1)
    expect(message(bob_page, "written while offline")).to_have_count(1)
    screenshot(ann_page, artifacts, "after-reconnect")

    stored = [m for m in history(ann_base, ann_page, room) if m["body"] == "written while offline"]
    assert [(m["id"], m["persisted"]) for m in stored] == [(offline_id, True)]
    expect(ann_page.locator("#messages li")).to_have_count(7)
    # No duplicate, no gap, in the room's order: the page shows what the history holds.
    shown = ann_page.locator("#messages li").evaluate_all("items => items.map(i => i.dataset.id)")
    in_order = [
        m["id"] for m in sorted(history(ann_base, ann_page, room), key=lambda m: m["offset"])
    ]
    assert shown == in_order


def test_the_content_security_policy_is_sent_enforced_and_reported(processes, browser):
    """The header is there, and Chromium enforces it: an inline script put into the page
    does not run, and the violation is reported, so any page of the demo that needed an
    inline script would fail the browser tests. (This context has no binding to the test's
    list: its violation is the expected one.)"""
    _, port = processes.web()
    context = browser.browser.new_context()
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    response = page.goto(f"http://127.0.0.1:{port}/accounts/login/")
    assert "script-src 'self'" in response.header_value("Content-Security-Policy")
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.inlineRan = true";
          document.body.appendChild(script);
        }"""
    )
    page.wait_for_function("() => window.cspViolations.length > 0")
    assert page.evaluate("window.inlineRan") is None
    assert page.evaluate("window.cspViolations")[0].startswith("script-src")
    context.close()


def test_an_owner_makes_a_private_room_adds_and_removes_a_member(
    processes, carol, browser, ann, bob, artifacts
):
    from playwright.sync_api import expect

    processes.worker()
    _, port = processes.web()
    base = f"http://127.0.0.1:{port}"
    name = f"team-{uuid.uuid4().hex[:8]}"

    ann_page = log_in(browser, base, ann)
    ann_page.fill("#private-room-name", name)
    ann_page.click("#private-room-form button")
    ann_page.wait_for_url(f"{base}/rooms/{name}/")
    expect_connected(ann_page)
    members = ann_page.locator("#members li")
    expect(members).to_have_text([f"{ann.user.username} (owner)"])
    ann_page.fill("#new-member", bob.user.username)
    ann_page.click("#add-member-form button")
    expect(members.filter(has_text=bob.user.username)).to_have_count(1)

    bob_page = log_in(browser, base, bob)
    open_room(bob_page, base, name)
    expect(bob_page.locator("#add-member-form")).to_have_count(0)  # members only look
    expect_state(send(bob_page, "hello team"), "stored")
    expect(message(ann_page, "hello team")).to_have_count(1)

    carol_page = log_in(browser, base, carol)
    carol_page.goto(f"{base}/rooms/{name}/")
    expect(carol_page.locator("#not-a-member")).to_be_visible()
    expect(carol_page.locator("#messages")).to_have_count(0)

    members.filter(has_text=bob.user.username).locator("button").click()
    expect(members).to_have_text([f"{ann.user.username} (owner)"])
    expect(bob_page.locator("#status")).to_have_attribute("data-state", "removed")
    screenshot(bob_page, artifacts, "removed-member")
    bob_page.reload()
    expect(bob_page.locator("#not-a-member")).to_be_visible()


def test_two_users_see_each_other_arrive_type_and_leave(processes, browser, ann, bob, artifacts):
    from playwright.sync_api import expect

    _, port = processes.web()
    base = f"http://127.0.0.1:{port}"
    room = f"presence-{uuid.uuid4().hex[:8]}"
    ann_page = log_in(browser, base, ann)
    open_room(ann_page, base, room)
    expect(ann_page.locator("#presence")).to_have_text(f"Here: {ann.user.username}")

    bob_page = log_in(browser, base, bob)
    open_room(bob_page, base, room)
    both = "Here: " + ", ".join(sorted([ann.user.username, bob.user.username]))
    expect(ann_page.locator("#presence")).to_have_text(both)
    expect(bob_page.locator("#presence")).to_have_text(both)

    bob_page.locator("#body").press_sequentially("hel")
    expect(ann_page.locator("#typing")).to_have_text(f"{bob.user.username} is typing…")
    expect(bob_page.locator("#typing")).to_have_text("")  # not told of his own typing
    ann_page.bring_to_front()
    screenshot(ann_page, artifacts, "room-presence-typing")

    bob_page.close()
    expect(ann_page.locator("#presence")).to_have_text(f"Here: {ann.user.username}")
    expect(ann_page.locator("#typing")).to_have_text("")


@pytest.fixture
def staff(ann):
    """Ann, a staff user (made before the browser starts: see the module docstring)."""
    ann.user.is_staff = True
    ann.user.save(update_fields=["is_staff"])
    return ann


def test_the_staff_panel_shows_sockets_connections_queue_and_lag(
    processes, staff, browser, bob, artifacts
):
    """The claim, as it happens: sockets open, the web role's PostgreSQL connections (none:
    the page's own requests go through the web pool and give it back), the worker's."""
    from playwright.sync_api import expect

    processes.worker()
    _, port = processes.web()
    base = f"http://127.0.0.1:{port}"
    room = f"panel-{uuid.uuid4().hex[:8]}"
    bob_page = log_in(browser, base, bob)
    open_room(bob_page, base, room)
    expect_state(send(bob_page, "something to store"), "stored")

    ann_page = log_in(browser, base, staff)
    ann_page.goto(f"{base}/ops/panel/")
    expect(ann_page.locator("#sockets-total")).not_to_have_text("\u2013")  # en dash: no figure yet
    expect(ann_page.locator("#processes tbody tr")).to_have_count(1)
    expect(ann_page.locator("#database tbody")).to_contain_text("worker")
    expect(ann_page.locator("#lag-latest")).to_contain_text("ms")
    expect(ann_page.locator("#claim")).to_have_attribute("data-state", "kept")
    screenshot(ann_page, artifacts, "staff-panel")

    denied = log_in(browser, base, bob)  # not staff: sent to the login page
    denied.goto(f"{base}/ops/panel/")
    assert "/accounts/login/" in denied.url


def seed_outbox(page, base: str, user, room: str, entries: list[dict]) -> None:
    """Put ``entries`` into the room page's outbox (sessionStorage), as a tab that lived long
    would have it."""
    page.goto(f"{base}/")
    key = f"chat.outbox.{user.user.get_username()}.{room}"
    page.evaluate(
        "([key, entries]) => sessionStorage.setItem(key, JSON.stringify("
        "Object.fromEntries(entries.map((e) => [e.id, e]))))",
        [key, entries],
    )


def test_the_receipts_header_stays_under_8_kb_however_many_messages_wait(processes, browser, ann):
    """A tab holding 300 accepted, unstored messages (the worker down for a long while)
    sends the receipts of the oldest that fit in 6000 characters: under nginx's 8 KB header
    buffer. The server ignores these forged ones; the page still loads."""
    _, port = processes.web()
    base = f"http://127.0.0.1:{port}"
    room = f"receipts-{uuid.uuid4().hex[:8]}"
    page = log_in(browser, base, ann)
    now_ms = int(page.evaluate("Date.now()"))
    entries = [
        {
            "id": str(uuid.uuid4()),
            "body": f"waiting {n}",
            "receipt": f"r{n:03d}." + "x" * 195,
            "since": now_ms - 300_000 + n,
        }
        for n in range(300)
    ]
    seed_outbox(page, base, ann, room, entries)
    with page.expect_request(lambda r: f"/api/rooms/{room}/messages" in r.url) as request:
        page.goto(f"{base}/rooms/{room}/")
    header = request.value.header_value("X-Write-Receipts")
    expect_connected(page)
    assert header and len(header) < 8 * 1024 - len("X-Write-Receipts: ")
    sent = header.split(",")
    assert sent == [entry["receipt"] for entry in entries[: len(sent)]]  # the oldest first
    assert len(sent) >= 25


def test_a_refused_message_is_not_resent_after_a_reload(processes, browser, ann):
    """A message the server answers with an error other than ``unavailable`` (here a lone
    surrogate: ``invalid_frame``) is shown as not sent and leaves the outbox: reloading the
    page does not send it again (no crash loop, whatever the frame)."""
    _, port = processes.web()
    base = f"http://127.0.0.1:{port}"
    room = f"refused-{uuid.uuid4().hex[:8]}"
    page = log_in(browser, base, ann)
    refused_id = str(uuid.uuid4())
    page.goto(f"{base}/")
    key = f"chat.outbox.{ann.user.get_username()}.{room}"
    page.evaluate(
        """([key, id]) => sessionStorage.setItem(key, JSON.stringify({[id]: {
             id: id, body: "broken \\ud83d", receipt: null, since: Date.now()}}))""",
        [key, refused_id],
    )
    sent_frames: list[str] = []

    def watch(websocket):
        websocket.on("framesent", lambda payload: sent_frames.append(payload))

    page.on("websocket", watch)
    page.goto(f"{base}/rooms/{room}/")
    expect_state(page.locator(f'#messages li[data-id="{refused_id}"]'), "failed")
    assert page.evaluate(f"sessionStorage.getItem({json.dumps(key)})") == "{}"

    page.reload()
    expect_connected(page)
    expect_state(send(page, "a normal one"), "accepted")
    assert sum(refused_id in frame for frame in sent_frames) == 1
    assert page.locator(f'#messages li[data-id="{refused_id}"]').count() == 0
