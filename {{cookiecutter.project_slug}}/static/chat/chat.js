/* The room page: history over HTTP, live messages over the WebSocket (docs/protocol.md).
 *
 * Your own messages go through three states, shown as ticks:
 *   sending  ◷   written here, not yet confirmed by the server;
 *   accepted ✓   the server has handed it to the persistence queue (message.accepted);
 *   stored   ✓✓  PostgreSQL has it (message.persisted, or the history API says so).
 * Until it is stored, a message waits in the outbox, kept in sessionStorage so that it
 * survives a reload of the tab:
 *   - not accepted yet: it is resent, with the same id, whenever the socket (re)opens; the
 *     id is the idempotency key, so a resend never stores a second copy;
 *   - accepted: its receipt goes with every history request (X-Write-Receipts), so the
 *     message is there after a reload even before the worker has stored it.
 * After a reconnect the page asks the history API for what it missed (after=).
 * Bodies and names are always inserted as text (textContent), never as HTML.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const list = document.getElementById("messages");
  const statusElement = document.getElementById("status");
  const form = document.getElementById("send-form");
  const input = document.getElementById("body");

  const historyUrl = "/api/rooms/" + encodeURIComponent(config.room) + "/messages";
  const socketUrl =
    (location.protocol === "https:" ? "wss://" : "ws://") +
    location.host + "/ws/rooms/" + encodeURIComponent(config.room) + "/";
  const outboxKey = "chat.outbox." + config.username + "." + config.room;

  const TICKS = { sending: "◷", accepted: "✓", stored: "✓✓", failed: "✗ not sent" };
  const RANK = { sending: 0, accepted: 1, stored: 2, failed: 3 };
  const PAGE_SIZE = 50;
  const CATCH_UP_PAGE_SIZE = 200;
  // Messages from several server processes can arrive slightly out of sent_at order, so
  // catch-up starts this far before the newest message seen (duplicates are dropped by id).
  const CATCH_UP_OVERLAP_MS = 10000;
  const PENDING_POLL_MS = 3000; // accepted, not yet known stored: ask the history API
  const RESEND_DELAY_MS = 2000; // after "unavailable" or "rate_limited"
  const OUTBOX_MAX_AGE_MS = 24 * 3600 * 1000; // receipts expire (CHAT_RECEIPT_MAX_AGE)
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 30000;

  const shown = new Map(); // message id -> its <li>
  let outbox = loadOutbox(); // message id -> {id, body, receipt, since}
  let socket = null;
  let failedAttempts = 0;
  let newest = null; // sent_at of the newest message the server has shown us

  // --- The outbox -------------------------------------------------------------------

  function loadOutbox() {
    let saved = {};
    try {
      saved = JSON.parse(sessionStorage.getItem(outboxKey)) || {};
    } catch (error) {
      saved = {};
    }
    const now = Date.now();
    for (const id of Object.keys(saved)) {
      if (now - saved[id].since > OUTBOX_MAX_AGE_MS) delete saved[id];
    }
    return saved;
  }

  function saveOutbox() {
    sessionStorage.setItem(outboxKey, JSON.stringify(outbox));
  }

  function receipts() {
    return Object.values(outbox).map((entry) => entry.receipt).filter(Boolean);
  }

  // --- Rendering ----------------------------------------------------------------------

  function sortKey(sentAt, id) {
    return sentAt ? sentAt + "|" + id : ""; // not sent yet: "" sorts after everything
  }

  function place(item) {
    const key = item.dataset.key;
    let next = null;
    for (const other of list.children) {
      if (other === item) continue;
      const otherKey = other.dataset.key;
      if (key && (otherKey === "" || otherKey > key)) {
        next = other;
        break;
      }
    }
    if (item.nextSibling !== next || item.parentNode !== list) list.insertBefore(item, next);
  }

  function show(message) {
    let item = shown.get(message.id);
    if (!item) {
      item = document.createElement("li");
      item.dataset.id = message.id;
      item.dataset.key = "";
      for (const part of ["time", "author", "body", "ticks"]) {
        const span = document.createElement("span");
        span.className = part;
        item.appendChild(span);
      }
      item.querySelector(".author").textContent = message.author;
      item.querySelector(".body").textContent = message.body;
      shown.set(message.id, item);
    }
    if (message.sent_at && !item.dataset.key) {
      item.dataset.key = sortKey(message.sent_at, message.id);
      item.querySelector(".time").textContent =
        new Date(millis(message.sent_at)).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) + " ";
      if (!newest || message.sent_at > newest) newest = message.sent_at;
    }
    place(item);
    return item;
  }

  function setState(id, state) {
    const item = shown.get(id);
    if (!item) return;
    if (item.dataset.state && RANK[item.dataset.state] >= RANK[state]) return;
    item.dataset.state = state;
    item.querySelector(".ticks").textContent = TICKS[state];
  }

  function setStatus(state, text) {
    statusElement.dataset.state = state;
    statusElement.textContent = text;
  }

  // --- The history API ----------------------------------------------------------------

  function millis(sentAt) {
    // "2026-01-02T03:04:05.123456+00:00" (always UTC): milliseconds are precise enough.
    return Date.parse(sentAt.slice(0, 23) + "Z");
  }

  function cursorBefore(sentAt) {
    const from = new Date(millis(sentAt) - CATCH_UP_OVERLAP_MS).toISOString();
    const raw = from + "|00000000-0000-0000-0000-000000000000";
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function showFromHistory(message) {
    show(message);
    const mine = message.author === config.username;
    if (message.persisted && outbox[message.id]) {
      delete outbox[message.id];
      saveOutbox();
    }
    if (mine) setState(message.id, message.persisted ? "stored" : "accepted");
  }

  async function fetchPage(params, onlyOwnPending) {
    const headers = {};
    const held = receipts();
    if (held.length) headers["X-Write-Receipts"] = held.join(",");
    const response = await fetch(historyUrl + "?" + new URLSearchParams(params), {
      headers: headers,
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error("history: HTTP " + response.status);
    const page = await response.json();
    for (const message of page.messages) {
      if (!onlyOwnPending || outbox[message.id]) showFromHistory(message);
    }
    return page.next;
  }

  async function catchUp() {
    if (!newest) {
      await fetchPage({ limit: PAGE_SIZE });
      return;
    }
    let after = cursorBefore(newest);
    while (after) after = await fetchPage({ after: after, limit: CATCH_UP_PAGE_SIZE });
  }

  async function checkPending() {
    // A reload or a dropped socket loses message.persisted: the receipts still tell. (The
    // answer names every receipt's message, whatever the limit; others' messages come by
    // the socket or by catch-up, never from here.)
    if (!receipts().length) return;
    try {
      await fetchPage({ limit: 1 }, true);
    } catch (error) {
      /* the next round, or the next reconnect, asks again */
    }
  }

  // --- The WebSocket ------------------------------------------------------------------

  function sendFrame(entry) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "message.send", id: entry.id, body: entry.body }));
    }
  }

  function resendUnaccepted() {
    for (const entry of Object.values(outbox)) {
      if (!entry.receipt) sendFrame(entry);
    }
  }

  function handleFrame(frame) {
    const entry = frame.id ? outbox[frame.id] : undefined;
    if (frame.type === "message") {
      show(frame);
      if (entry) setState(frame.id, entry.receipt ? "accepted" : "sending");
    } else if (frame.type === "message.accepted") {
      if (entry) {
        entry.receipt = frame.receipt;
        saveOutbox();
      }
      setState(frame.id, "accepted");
    } else if (frame.type === "message.persisted") {
      if (entry) {
        delete outbox[frame.id];
        saveOutbox();
      }
      setState(frame.id, "stored");
    } else if (frame.type === "error") {
      if (!entry) {
        console.warn("chat:", frame.code, frame.detail);
      } else if (frame.code === "unavailable" || frame.code === "rate_limited") {
        setTimeout(() => sendFrame(entry), RESEND_DELAY_MS); // same id: never stored twice
      } else {
        delete outbox[frame.id];
        saveOutbox();
        setState(frame.id, "failed");
        shown.get(frame.id).title = frame.detail;
      }
    }
  }

  function connect() {
    setStatus("connecting", "connecting…");
    socket = new WebSocket(socketUrl);
    socket.onopen = function () {
      failedAttempts = 0;
      setStatus("connected", "connected");
      resendUnaccepted();
      catchUp().catch((error) => console.warn("chat: catch-up failed:", error));
    };
    socket.onmessage = function (event) {
      handleFrame(JSON.parse(event.data));
    };
    socket.onclose = function (event) {
      socket = null;
      // 4409: this user has too many sockets open (docs/protocol.md); other tabs must close
      // first, so the page waits at the long end of its backoff before trying again.
      if (event.code === 4409) failedAttempts = Math.max(failedAttempts, 6);
      reconnectLater();
    };
  }

  function reconnectLater() {
    // Exponential backoff with jitter: a restarted server is not hit by every page at once.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** failedAttempts);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    failedAttempts += 1;
    setStatus("reconnecting", "offline, reconnecting in " + Math.ceil(delay / 1000) + " s…");
    setTimeout(connect, delay);
  }

  // --- Sending ------------------------------------------------------------------------

  function uuid4() {
    // crypto.randomUUID() exists only on https:// and localhost; this works everywhere.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const body = input.value.trim();
    if (!body) return;
    const entry = { id: uuid4(), body: body, receipt: null, since: Date.now() };
    outbox[entry.id] = entry;
    saveOutbox();
    show({ id: entry.id, author: config.username, body: body, sent_at: null });
    setState(entry.id, "sending");
    input.value = "";
    sendFrame(entry); // if the socket is down, it goes when it reopens
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  input.maxLength = config.maxBody;

  // --- Start --------------------------------------------------------------------------

  for (const entry of Object.values(outbox)) {
    show({ id: entry.id, author: config.username, body: entry.body, sent_at: null });
    setState(entry.id, entry.receipt ? "accepted" : "sending");
  }
  setInterval(checkPending, PENDING_POLL_MS);
  fetchPage({ limit: PAGE_SIZE })
    .catch((error) => console.warn("chat: history failed:", error))
    .finally(connect);
})();
