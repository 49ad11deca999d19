// The supervisors' wallboard: snapshots pushed over the WebSocket; the longest waits tick locally.

const root = document.getElementById("wallboard");
const connection = root.querySelector('[data-role="connection"]');
let longestWaits = {}; // queue id → [seconds at snapshot, time of snapshot]

function render(snapshot) {
  const now = Date.now();
  longestWaits = {};
  for (const queue of snapshot.queues) {
    const tile = root.querySelector(`[data-queue="${queue.id}"]`);
    if (!tile) continue;
    for (const field of ["waiting", "ringing", "talking"]) tile.querySelector(`[data-field="${field}"]`).textContent = queue[field];
    longestWaits[queue.id] = queue.waiting + queue.ringing > 0 ? [queue.longest_wait_s, now] : [0, now];
  }
  for (const agents of snapshot.agents) {
    const cell = root.querySelector(`[data-agents="${agents.status}"]`);
    if (cell) cell.textContent = agents.count;
  }
  tick();
}

function tick() {
  const now = Date.now();
  for (const [queueId, [seconds, at]] of Object.entries(longestWaits)) {
    const shown = seconds > 0 ? seconds + Math.floor((now - at) / 1000) : 0;
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
