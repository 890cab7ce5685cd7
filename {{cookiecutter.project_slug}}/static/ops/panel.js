/* The staff panel: polls /ops/panel.json every second and draws what it says (ops/live.py).
 * Every value is inserted as text; the charts keep the last few minutes in memory only.
 */
(function () {
  "use strict";

  const REFRESH_MS = 1000;
  const HISTORY = 180; // points per chart: three minutes at one a second
  const series = { sockets: [], queue: [] };

  function byId(id) {
    return document.getElementById(id);
  }

  function text(id, value) {
    byId(id).textContent = value === null || value === undefined ? "–" : String(value);
  }

  function row(cells, className) {
    const tr = document.createElement("tr");
    if (className) tr.className = className;
    for (const cell of cells) {
      const td = document.createElement("td");
      td.textContent = cell === null || cell === undefined ? "–" : String(cell);
      tr.appendChild(td);
    }
    return tr;
  }

  function fill(tableId, rows) {
    const body = byId(tableId).querySelector("tbody");
    body.replaceChildren(...rows);
  }

  function push(name, value) {
    series[name].push(value === null ? 0 : value);
    if (series[name].length > HISTORY) series[name].shift();
  }

  function draw(canvasId, values) {
    const canvas = byId(canvasId);
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    if (!values.length) return;
    const top = Math.max(1, ...values);
    const step = canvas.width / Math.max(1, values.length - 1);
    context.strokeStyle = "#2a7";
    context.lineWidth = 2;
    context.beginPath();
    values.forEach((value, index) => {
      const x = index * step;
      const y = canvas.height - 4 - (value / top) * (canvas.height - 8);
      if (index === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    });
    context.stroke();
    context.fillStyle = "#666";
    context.fillText(String(top), 4, 12);
  }

  function render(data) {
    text("sockets-total", data.sockets);
    fill(
      "processes",
      data.processes.map((p) => row([p.process, p.pid, p.sockets]))
    );
    push("sockets", data.sockets);
    draw("sockets-chart", series.sockets);

    const database = data.database;
    fill(
      "database",
      Object.entries(database.roles).map(([role, entry]) => {
        const states = Object.entries(entry.states).map(([s, n]) => n + " " + s).join(", ");
        const over = entry.budget !== null && entry.total > entry.budget;
        return row([role, entry.total, entry.budget, states], over ? "over" : "");
      })
    );
    text(
      "database-total",
      "This project: " + database.project_total + " of a budget of " + database.budget_total +
        "; the whole server: " + database.server_total + " of max_connections = " +
        database.max_connections + "."
    );
    const web = database.roles.web.total;
    const claim = byId("claim");
    claim.dataset.state = web <= database.roles.web.budget ? "kept" : "broken";
    claim.textContent =
      data.sockets + " socket(s) open, " + web + " PostgreSQL connection(s) of the web role " +
      "(its pools' budget: " + database.roles.web.budget + ", for HTTP views only).";

    text("queue-depth", data.queue_depth === null ? "broker not answering" : data.queue_depth);
    push("queue", data.queue_depth);
    draw("queue-chart", series.queue);

    const lag = data.persist_lag;
    text("lag-latest", lag.latest_ms === null ? null : lag.latest_ms + " ms");
    text(
      "lag-summary",
      lag.batches
        ? "Worst message of each of the last " + lag.batches + " batches: median " +
            lag.p50_ms + " ms, max " + lag.max_ms + " ms."
        : "No batch stored lately."
    );
    draw("lag-chart", lag.series);

    text("dead-count", data.dead_letters.count);
    byId("dead-latest").replaceChildren(
      ...data.dead_letters.latest.map((d) => {
        const li = document.createElement("li");
        li.textContent = d.at + " " + d.message_id + " (author " + d.author_id + "): " + d.reason;
        return li;
      })
    );
    text("refreshed", "updated " + new Date(data.at * 1000).toLocaleTimeString());
  }

  async function refresh() {
    try {
      const response = await fetch("/ops/panel.json", { credentials: "same-origin" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(await response.json());
    } catch (error) {
      text("refreshed", "not updated: " + error.message);
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }

  refresh();
})();
