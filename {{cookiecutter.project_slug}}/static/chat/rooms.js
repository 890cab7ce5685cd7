/* Private rooms in the demo, through the JSON API (docs/protocol.md, "Access to rooms"):
 * the home page creates one; the room page lists its members and lets the owner add and
 * remove them. A removed member's sockets to the room are closed by the server (4403).
 *
 * Calls that change state carry Django's CSRF token in X-CSRFToken, read from the page's
 * own form; names are inserted as text, never as HTML.
 */
(function () {
  "use strict";

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  async function call(method, url, body) {
    const response = await fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = response.status === 204 ? {} : await response.json();
    if (!response.ok) throw new Error(answer.error || "HTTP " + response.status);
    return answer;
  }

  // --- The home page: create a private room ----------------------------------------------

  const createForm = document.getElementById("private-room-form");
  if (createForm) {
    createForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      const name = document.getElementById("private-room-name").value.trim();
      const error = document.getElementById("private-room-error");
      error.textContent = "";
      try {
        await call("POST", "/api/rooms", { name: name, private: true });
        location.assign("/rooms/" + encodeURIComponent(name) + "/");
      } catch (failure) {
        error.textContent = failure.message;
      }
    });
  }

  // --- The room page: members ------------------------------------------------------------

  const panel = document.getElementById("members-panel");
  if (!panel) return;
  const membersUrl = "/api/rooms/" + encodeURIComponent(panel.dataset.room) + "/members";
  const isOwner = panel.dataset.owner === "true";
  const list = document.getElementById("members");
  const error = document.getElementById("members-error");

  function show(room) {
    list.replaceChildren();
    for (const username of room.members) {
      const item = document.createElement("li");
      item.dataset.username = username;
      item.textContent = username + (username === room.owner ? " (owner)" : "");
      if (isOwner && username !== room.owner) {
        const remove = document.createElement("button");
        remove.type = "button";
        remove.textContent = "Remove";
        remove.addEventListener("click", function () {
          act(call("DELETE", membersUrl + "/" + encodeURIComponent(username)).then(load));
        });
        item.appendChild(remove);
      }
      list.appendChild(item);
    }
  }

  function load() {
    return call("GET", membersUrl).then(show);
  }

  function act(promise) {
    error.textContent = "";
    return promise.catch(function (failure) {
      error.textContent = failure.message;
    });
  }

  const addForm = document.getElementById("add-member-form");
  if (addForm) {
    addForm.addEventListener("submit", function (event) {
      event.preventDefault();
      const input = document.getElementById("new-member");
      act(
        call("POST", membersUrl, { username: input.value.trim() }).then(function (room) {
          input.value = "";
          show(room);
        })
      );
    });
  }

  act(load());
})();
