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
 *     message is there after a reload even before the worker has stored it. Only receipts of
 *     messages not yet seen stored go, oldest first, and no more than fit in
 *     RECEIPTS_MAX_CHARS: the header stays under nginx's 8 KB however long the tab lives
 *     (the rest go once the older ones are stored and leave the outbox).
 *   - accepted, then lost (X-Receipts-Unknown in a history answer: the broker's batch
 *     and the pending copy vanished, say with a Redis restarted without persistence): it
 *     goes back to "sending" and is resent with its id.
 *   - refused (an error other than "unavailable"): it is dropped and shown as not sent;
 *     resending what the server refused would only be refused again. A message sent
 *     MAX_UNANSWERED_SENDS times over an open socket without any answer is dropped too:
 *     a frame the server cannot answer must not be resent after every reconnect forever.
 * Every message carries its offset in the room (1, 2, 3... from the server). After a
 * reconnect, or when a live message's offset jumps past the next one expected, the page
 * asks the history API for everything after the last offset it showed (after_offset=):
 * exactly what it missed, stored or not, whatever the servers' clocks say.
 * Who is here (presence) and who is typing are shown above the messages.
 * Bodies and names are always inserted as text (textContent), never as HTML.
 * When the server closes the socket because the session was revoked (4401: logged out,
 * password changed), the page reloads, and the server decides (the login page, or a fresh
 * socket); when the user was removed from this private room (4403), it stops.
 * The page's settings come in data- attributes: the Content-Security-Policy allows no inline
 * script, not even a JSON one.
 */
(function () {
  "use strict";

  const root = document.getElementById("chat");
  const config = {
    room: root.dataset.room,
    username: root.dataset.username,
    maxBody: Number(root.dataset.maxBody),
  };
  const list = document.getElementById("messages");
  const statusElement = document.getElementById("status");
  const form = document.getElementById("send-form");
  const input = document.getElementById("body");
  const presenceElement = document.getElementById("presence");
  const typingElement = document.getElementById("typing");

  const historyUrl = "/api/rooms/" + encodeURIComponent(config.room) + "/messages";
  const socketUrl =
    (location.protocol === "https:" ? "wss://" : "ws://") +
    location.host + "/ws/rooms/" + encodeURIComponent(config.room) + "/";
  const outboxKey = "chat.outbox." + config.username + "." + config.room;

  const TICKS = { sending: "◷", accepted: "✓", stored: "✓✓", failed: "✗ not sent" };
  const RANK = { sending: 0, accepted: 1, stored: 2, failed: 3 };
  const PAGE_SIZE = 50;
  const CATCH_UP_PAGE_SIZE = 200;
  const TYPING_EVERY_MS = 2000; // at most one "typing" frame this often
  const TYPING_SHOWN_MS = 4000; // how long "... is typing" stays after the last one
  const PENDING_POLL_MS = 3000; // accepted, not yet known stored: ask the history API
  const RESEND_DELAY_MS = 2000; // after "unavailable" or "rate_limited"
  const OUTBOX_MAX_AGE_MS = 24 * 3600 * 1000; // receipts expire (CHAT_RECEIPT_MAX_AGE)
  const RECEIPTS_MAX_CHARS = 6000; // X-Write-Receipts, well under nginx's 8 KB header buffer
  const MAX_UNANSWERED_SENDS = 5;
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  const CLOSE_UNAUTHORIZED = 4401; // the session was revoked
  const CLOSE_FORBIDDEN = 4403; // removed from this private room
  const CLOSE_TOO_MANY_SOCKETS = 4409;

  const shown = new Map(); // identity(author, id) -> its <li>: an id is only unique per author
  let outbox = loadOutbox(); // message id -> {id, body, receipt, since}
  let socket = null;
  let socketId = null; // names the socket that accepted a message (see resendVanished)
  let failedAttempts = 0;
  let removed = false; // closed with 4403: no reconnecting, no polling
  let lastOffset = 0; // the highest offset shown: catch-up asks for what came after it
  let missingAfter = null; // an offset after which something may be missing, until fetched
  let recovering = false;
  const here = new Set(); // who is in the room (presence)
  const typists = new Map(); // username -> the timer that clears "is typing"
  let typingSent = 0;

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
    // Oldest first: they are the likeliest to be stored by now, and once they are, they
    // leave the outbox and make room for the next.
    const now = Date.now();
    const held = [];
    let length = 0;
    const waiting = Object.values(outbox).filter((entry) => entry.receipt);
    waiting.sort((a, b) => a.since - b.since);
    for (const entry of waiting) {
      if (now - entry.since > OUTBOX_MAX_AGE_MS) {
        delete outbox[entry.id]; // its receipt has expired: the server would ignore it
        continue;
      }
      if (length + entry.receipt.length + 1 > RECEIPTS_MAX_CHARS) break;
      held.push(entry.receipt);
      length += entry.receipt.length + 1;
    }
    return held;
  }

  // --- Rendering ----------------------------------------------------------------------

  function sortKey(offset) {
    // The room's order is the offsets'; not sent yet: "" sorts after everything.
    return offset ? String(offset).padStart(16, "0") : "";
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

  function identity(author, id) {
    // A message is its author's and its id (docs/protocol.md): another user's frame under
    // the same id is another message, never one that hides or replaces this one.
    return author + " " + id; // usernames hold no spaces
  }

  function show(message) {
    const key = identity(message.author, message.id);
    let item = shown.get(key);
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
      shown.set(key, item);
    }
    if (message.sent_at && !item.dataset.key) {
      item.dataset.key = sortKey(message.offset);
      item.querySelector(".time").textContent =
        new Date(millis(message.sent_at)).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) + " ";
    }
    if (message.offset && message.offset > lastOffset) lastOffset = message.offset;
    place(item);
    return item;
  }

  function setState(id, state) {
    // States are those of this user's own messages.
    const item = shown.get(identity(config.username, id));
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

  function showFromHistory(message) {
    show(message);
    const mine = message.author === config.username;
    if (mine && message.persisted && outbox[message.id]) {
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
      const own = message.author === config.username && outbox[message.id];
      if (!onlyOwnPending || own) showFromHistory(message);
    }
    resendVanished(response.headers.get("X-Receipts-Unknown"));
    return page.next;
  }

  function resendVanished(header) {
    // Accepted, then lost before it was stored (the broker's batch and the pending copy
    // both gone): the server names it, and only this outbox still has the body. Sent
    // again with its id, as if never accepted; the id keeps it to one stored copy.
    // The socket that accepted an id answers its resends with the first receipt and
    // hands nothing off again (docs/protocol.md): those go over a fresh socket.
    if (!header) return;
    const lost = header.split(",").map((id) => outbox[id.trim()]).filter(Boolean);
    if (!lost.length) return;
    for (const entry of lost) {
      entry.receipt = null;
      entry.unanswered = 0;
      const item = shown.get(identity(config.username, entry.id));
      if (item) delete item.dataset.state; // back from "accepted": to be accepted again
      setState(entry.id, "sending");
    }
    saveOutbox();
    const reopen = lost.some((entry) => entry.socket === socketId);
    if (reopen && socket) socket.close(); // onclose reconnects; onopen resends them
    else lost.forEach(sendFrame);
  }

  function recover(after) {
    // Fetch every message after this offset (and after any earlier gap still open), one
    // walk at a time; a gap found meanwhile is walked next.
    missingAfter = missingAfter === null ? after : Math.min(missingAfter, after);
    if (recovering) return;
    recovering = true;
    (async function walk() {
      while (missingAfter !== null) {
        const from = missingAfter;
        let next = String(from);
        while (next !== null) next = await fetchPage({ after_offset: next, limit: CATCH_UP_PAGE_SIZE });
        if (missingAfter === from) missingAfter = null; // else a new gap opened below it
      }
    })()
      .catch((error) => console.warn("chat: catch-up failed, retried on reconnect:", error))
      .finally(() => {
        recovering = false;
      });
  }

  async function checkPending() {
    // A reload or a dropped socket loses message.persisted: the receipts still tell. (The
    // answer names every receipt's message, whatever the limit; others' messages come by
    // the socket or by catch-up, never from here.)
    if (removed || !receipts().length) return;
    try {
      await fetchPage({ limit: 1 }, true);
    } catch (error) {
      /* the next round, or the next reconnect, asks again */
    }
  }

  // --- Presence and typing ------------------------------------------------------------

  function renderPresence() {
    const names = Array.from(here).sort();
    presenceElement.textContent = names.length ? "Here: " + names.join(", ") : "";
  }

  function startTyping(user) {
    clearTimeout(typists.get(user));
    typists.set(user, setTimeout(() => stopTyping(user), TYPING_SHOWN_MS));
    renderTyping();
  }

  function stopTyping(user) {
    if (!typists.has(user)) return;
    clearTimeout(typists.get(user));
    typists.delete(user);
    renderTyping();
  }

  function renderTyping() {
    const names = Array.from(typists.keys()).sort();
    typingElement.textContent =
      names.length === 0 ? "" : names.join(", ") + (names.length === 1 ? " is typing…" : " are typing…");
  }

  // --- The WebSocket ------------------------------------------------------------------

  function sendFrame(entry) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    entry.unanswered = (entry.unanswered || 0) + 1;
    if (entry.unanswered > MAX_UNANSWERED_SENDS) {
      refuse(entry.id, "The server never answered this message.");
      return;
    }
    saveOutbox();
    socket.send(JSON.stringify({ type: "message.send", id: entry.id, body: entry.body }));
  }

  function refuse(id, detail) {
    delete outbox[id];
    saveOutbox();
    setState(id, "failed");
    const item = shown.get(identity(config.username, id));
    if (item) item.title = detail;
  }

  function resendUnaccepted() {
    for (const entry of Object.values(outbox)) {
      if (!entry.receipt) sendFrame(entry);
    }
  }

  function handleFrame(frame) {
    const entry = frame.id ? outbox[frame.id] : undefined;
    if (frame.type === "message") {
      const expected = lastOffset + 1;
      show(frame);
      if (entry && frame.author === config.username) {
        setState(frame.id, entry.receipt ? "accepted" : "sending");
      }
      stopTyping(frame.author);
      // A jump: something between was missed (or refused; then the answer is empty).
      if (lastOffset && frame.offset > expected) recover(expected - 1);
    } else if (frame.type === "message.accepted") {
      if (entry) {
        entry.receipt = frame.receipt;
        entry.socket = socketId;
        saveOutbox();
      }
      setState(frame.id, "accepted");
    } else if (frame.type === "message.persisted") {
      if (entry) {
        delete outbox[frame.id];
        saveOutbox();
      }
      setState(frame.id, "stored");
    } else if (frame.type === "presence") {
      here.clear();
      for (const user of frame.users) here.add(user);
      renderPresence();
    } else if (frame.type === "presence.join") {
      here.add(frame.user);
      renderPresence();
    } else if (frame.type === "presence.leave") {
      here.delete(frame.user);
      stopTyping(frame.user);
      renderPresence();
    } else if (frame.type === "typing") {
      startTyping(frame.user);
    } else if (frame.type === "error") {
      if (!entry) {
        console.warn("chat:", frame.code, frame.detail);
      } else if (frame.code === "unavailable" || frame.code === "rate_limited") {
        entry.unanswered = 0; // answered: the server is alive, only busy
        setTimeout(() => sendFrame(entry), RESEND_DELAY_MS); // same id: never stored twice
      } else {
        refuse(frame.id, frame.detail);
      }
    }
  }

  function connect() {
    setStatus("connecting", "connecting…");
    socket = new WebSocket(socketUrl);
    socketId = uuid4();
    socket.onopen = function () {
      failedAttempts = 0;
      setStatus("connected", "connected");
      resendUnaccepted();
      recover(lastOffset);
    };
    socket.onmessage = function (event) {
      handleFrame(JSON.parse(event.data));
    };
    socket.onclose = function (event) {
      socket = null;
      if (event.code === CLOSE_UNAUTHORIZED) {
        setStatus("signed-out", "signed out");
        location.reload();
        return;
      }
      if (event.code === CLOSE_FORBIDDEN) {
        removed = true;
        setStatus("removed", "you are no longer a member of this room");
        form.querySelector("button").disabled = true;
        return;
      }
      // 4409: this user has too many sockets open (docs/protocol.md); other tabs must close
      // first, so the page waits at the long end of its backoff before trying again.
      if (event.code === CLOSE_TOO_MANY_SOCKETS) failedAttempts = Math.max(failedAttempts, 6);
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

  input.addEventListener("input", function () {
    const now = Date.now();
    if (now - typingSent < TYPING_EVERY_MS || !socket || socket.readyState !== WebSocket.OPEN) return;
    typingSent = now;
    socket.send(JSON.stringify({ type: "typing" }));
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
