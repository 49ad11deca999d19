// The shared inbox: the list and the open thread follow the agent's socket (conversation events),
// a sound or a browser notification when the tab is in the background, and keyboard shortcuts:
// Alt+N the next conversation, Alt+A take the open one, Ctrl+Enter send the reply.

const RECONNECT_MAX_MS = 10000;
const inbox = document.getElementById("inbox");
const list = document.getElementById("inbox-list");
const threadBox = document.querySelector('[data-role="thread-box"]');
const openId = Number(inbox.dataset.open) || null;
let reconnectDelayMs = 500;
let refreshing = null;
let isListStale = false;

async function replace(element, url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (response.ok) element.innerHTML = await response.text();
}

function refreshList() {
  // One refresh at a time: events during a refresh ask for the list once more after it, not once
  // each (the refresh under way may have read the list before what they tell of).
  if (refreshing) {
    isListStale = true;
    return refreshing;
  }
  isListStale = false;
  const url = `${list.dataset.url}?tab=${encodeURIComponent(inbox.dataset.tab)}&open=${openId || ""}`;
  refreshing = replace(list, url).finally(() => {
    refreshing = null;
    if (isListStale) refreshList();
  });
  return refreshing;
}

function refreshThread() {
  if (threadBox) replace(threadBox, threadBox.dataset.url);
}

function chime() {
  try {
    const context = new AudioContext();
    const tone = context.createOscillator();
    const volume = context.createGain();
    volume.gain.value = 0.1;
    tone.frequency.value = 880;
    tone.connect(volume).connect(context.destination);
    tone.start();
    tone.stop(context.currentTime + 0.15);
  } catch {
    // No audio output: the list and the title still change.
  }
}

function tell(text) {
  if (!document.hidden) return;
  if ("Notification" in window && Notification.permission === "granted") {
    new Notification("Switchboard", { body: text, tag: "inbox" });
  } else {
    chime();
  }
}

const SAID = {
  "conversation.assigned": "A conversation was given to you.",
  "conversation.message": "A customer wrote.",
  "conversation.waiting": "A customer is waiting.",
};

function onFrame(frame) {
  if (typeof frame.type !== "string" || !frame.type.startsWith("conversation.")) return;
  refreshList();
  if (openId && frame.conversation_id === openId) refreshThread();
  if (SAID[frame.type]) tell(SAID[frame.type]);
}

function connect() {
  if (inbox.dataset.isAgent !== "true") return; // the agent socket is an agent's: a supervisor reloads
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/ws/agent/`);
  socket.addEventListener("open", () => {
    reconnectDelayMs = 500;
    inbox.dataset.live = "true";
    refreshList(); // what changed while the socket was away
  });
  socket.addEventListener("message", (message) => {
    try {
      onFrame(JSON.parse(message.data));
    } catch {
      // Not ours to read: the dashboard's frames.
    }
  });
  socket.addEventListener("close", () => {
    inbox.dataset.live = "false";
    setTimeout(connect, reconnectDelayMs);
    reconnectDelayMs = Math.min(reconnectDelayMs * 2, RECONNECT_MAX_MS);
  });
}

function nextConversation() {
  const links = Array.from(list.querySelectorAll("[data-conversation] a"));
  if (!links.length) return;
  const current = links.findIndex((link) => link.getAttribute("aria-current") === "true");
  links[(current + 1) % links.length].click();
}

document.addEventListener("keydown", (event) => {
  if (event.altKey && event.key.toLowerCase() === "n") {
    event.preventDefault();
    nextConversation();
  } else if (event.altKey && event.key.toLowerCase() === "a") {
    const claim = document.querySelector('[data-action="claim"]');
    if (claim) {
      event.preventDefault();
      claim.click();
    }
  } else if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
    const send = document.querySelector('[data-action="send"]');
    if (send && event.target.closest('[data-role="reply"]')) {
      event.preventDefault();
      send.click();
    }
  }
});

// Asked once, on a click (browsers ignore a request no gesture made).
document.addEventListener("click", () => {
  if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
}, { once: true });

connect();
