// The supervisors' wallboard: snapshots pushed over the WebSocket (the charts of the day, drawn on the
// server, now and then with them); the longest waits tick locally.

const root = document.getElementById("wallboard");
const connection = root.querySelector('[data-role="connection"]');
let longestWaits = {}; // queue id → [seconds at snapshot, time of snapshot, whether anyone waits]
let oldestQueued = null; // the same for the oldest recording waiting for transcription

function render(snapshot) {
  const now = Date.now();
  longestWaits = {};
  for (const queue of snapshot.queues) {
    const tile = root.querySelector(`[data-queue="${queue.id}"]`) || addTile(queue);
    for (const field of ["waiting", "ringing", "talking"]) tile.querySelector(`[data-field="${field}"]`).textContent = queue[field];
    longestWaits[queue.id] = [queue.longest_wait_s, now, queue.waiting + queue.ringing > 0];
  }
  if (snapshot.charts) {
    for (const slot of root.querySelectorAll("[data-chart-slot]")) slot.innerHTML = snapshot.charts[slot.dataset.chartSlot];
    root.querySelector('[data-role="service-level"]').textContent = snapshot.charts.service_level_text;
    for (const tile of root.querySelectorAll("[data-queue]")) {
      tile.querySelector('[data-field="service_level"]').textContent = snapshot.charts.queues[tile.dataset.queue] || "no calls";
    }
  }
  // The work after calls (recordings waiting for transcription, being transcribed or summarised);
  // the oldest one's wait ticks on between snapshots, as a stalled worker sends none.
  for (const [field, value] of Object.entries(snapshot.after_calls || {})) {
    const cell = root.querySelector(`[data-after="${field}"]`);
    if (cell) cell.textContent = value;
  }
  if (snapshot.after_calls) oldestQueued = [snapshot.after_calls.oldest_queued_s, now, snapshot.after_calls.queued > 0];
  for (const agents of snapshot.agents) {
    const cell = root.querySelector(`[data-agents="${agents.status}"]`);
    if (cell) cell.textContent = agents.count;
  }
  tick();
}

// A queue made since the page was loaded gets its tile.
function addTile(queue) {
  const tile = document.createElement("article");
  tile.className = "tile";
  tile.dataset.queue = queue.id;
  const name = document.createElement("h2");
  name.textContent = queue.name;
  tile.append(name);
  for (const [field, label] of [["waiting", "waiting"], ["longest_wait", "longest wait"], ["ringing", "ringing"], ["talking", "talking"], ["service_level", "service level today"]]) {
    const line = document.createElement("p");
    const value = document.createElement("strong");
    value.dataset.field = field;
    line.append(value, ` ${label}`);
    tile.append(line);
  }
  root.querySelector('[data-role="queues"]').append(tile);
  return tile;
}

function tick() {
  const now = Date.now();
  const oldestCell = root.querySelector('[data-after="oldest_queued_s"]');
  if (oldestQueued && oldestCell) {
    const [seconds, at, isWaiting] = oldestQueued;
    oldestCell.textContent = isWaiting ? seconds + Math.floor((now - at) / 1000) : 0;
  }
  for (const [queueId, [seconds, at, isWaiting]] of Object.entries(longestWaits)) {
    const shown = isWaiting ? seconds + Math.floor((now - at) / 1000) : 0; // a caller who just arrived waits too
    root.querySelector(`[data-queue="${queueId}"] [data-field="longest_wait"]`).textContent = `${shown} s`;
  }
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}${root.dataset.socketPath}`);
  socket.addEventListener("open", () => { connection.textContent = "live"; root.dataset.connected = "true"; });
  socket.addEventListener("message", (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "wallboard.snapshot") render(frame);
  });
  socket.addEventListener("close", () => {
    connection.textContent = "reconnecting…";
    root.dataset.connected = "false";
    setTimeout(connect, 2000);
  });
}

setInterval(tick, 1000);
connect();
