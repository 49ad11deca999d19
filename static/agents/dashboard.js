// The agent dashboard: one WebSocket per tab; presence is the server's, every tab mirrors it.

const LABELS = { available: "Available", away: "Away", offline: "Offline" };
const RECONNECT_MAX_MS = 10000;

const root = document.getElementById("presence");
const statusLabel = root.querySelector('[data-role="status-label"]');
const connectionLabel = root.querySelector('[data-role="connection"]');
const errorLine = root.querySelector('[data-role="error"]');
const buttons = Array.from(root.querySelectorAll("[data-status-choice]"));

let socket = null;
let reconnectDelayMs = 500;

function showStatus(status) {
  root.dataset.status = status;
  statusLabel.textContent = LABELS[status] || status;
  for (const button of buttons) {
    button.setAttribute("aria-pressed", String(button.dataset.statusChoice === status));
  }
}

function setConnected(isConnected) {
  connectionLabel.textContent = isConnected ? "live" : "reconnecting…";
  root.dataset.connected = String(isConnected);
  for (const button of buttons) button.disabled = !isConnected;
}

function showError(message) {
  errorLine.textContent = message;
  errorLine.hidden = !message;
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${window.location.host}${root.dataset.socketPath}`);
  socket.addEventListener("open", () => {
    reconnectDelayMs = 500;
    setConnected(true);
    showError("");
  });
  socket.addEventListener("message", (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "agent.status") showStatus(frame.status);
    else if (frame.type === "error") showError(frame.message);
  });
  socket.addEventListener("close", () => {
    setConnected(false);
    setTimeout(connect, reconnectDelayMs);
    reconnectDelayMs = Math.min(reconnectDelayMs * 2, RECONNECT_MAX_MS);
  });
}

for (const button of buttons) {
  button.addEventListener("click", () => {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "presence.set", status: button.dataset.statusChoice }));
    }
  });
}

showStatus(root.dataset.status);
setConnected(false);
connect();
