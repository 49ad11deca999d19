// The shared inbox: the list and the open thread follow the agent's socket (conversation events),
// a sound or a browser notification when the tab is in the background, and keyboard shortcuts:
// Alt+N the next conversation, Alt+A take the open one, Ctrl+Enter send the reply. In the reply box:
// a canned reply inserted from its list, or by typing "/shortcut" then Tab, for the agent to edit; while
// the agent types, the customer is shown "typing…" (asked at most every TYPING_EVERY_MS).
//
// An agent's inbox has the softphone docked beside it (static/agents/dashboard.js): its socket is the
// page's one agent socket, and this script reads its frames ("agent-frame" events). So that a call is
// never cut, moving around the inbox then never leaves the page: a conversation, a tab, a search or an
// action's answer is fetched and swapped into #inbox, the address following (history.pushState).
// Without the softphone (a supervisor) the links and forms navigate as usual.

const RECONNECT_MAX_MS = 10000;
const TYPING_EVERY_MS = 20000; // Meta shows "typing…" for up to 25 s; the server throttles too
const inbox = document.getElementById("inbox");
const presence = document.getElementById("presence"); // the docked softphone, for an agent
const list = () => document.getElementById("inbox-list");
const threadBox = () => inbox.querySelector('[data-role="thread-box"]');
const openId = () => Number(inbox.dataset.open) || null;
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
  const query = encodeURIComponent(inbox.dataset.query || "");
  const url = `${list().dataset.url}?tab=${encodeURIComponent(inbox.dataset.tab)}&q=${query}&open=${openId() || ""}`;
  refreshing = replace(list(), url).finally(() => {
    refreshing = null;
    if (isListStale) refreshList();
  });
  return refreshing;
}

function refreshThread() {
  const box = threadBox();
  if (box) replace(box, box.dataset.url);
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
  if (openId() && frame.conversation_id === openId()) refreshThread();
  if (SAID[frame.type]) tell(SAID[frame.type]);
}

function setLive(isLive) {
  inbox.dataset.live = String(isLive);
  if (isLive) refreshList(); // what changed while the socket was away
}

function connect() {
  if (inbox.dataset.isAgent !== "true") return; // the agent socket is an agent's: a supervisor reloads
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/ws/agent/`);
  socket.addEventListener("open", () => {
    reconnectDelayMs = 500;
    setLive(true);
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
  const links = Array.from(list().querySelectorAll("[data-conversation] a"));
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

// The reply box: canned replies and "typing…"; bound again to each conversation swapped in.
let lastTypingAt = 0;

function insertAtCaret(textarea, text, from = textarea.selectionStart) {
  const before = textarea.value.slice(0, from);
  const after = textarea.value.slice(textarea.selectionEnd);
  textarea.value = before + text + after;
  const caret = before.length + text.length;
  textarea.setSelectionRange(caret, caret);
  textarea.focus();
}

function cannedText(cannedList, shortcut) {
  if (!cannedList) return null;
  const option = Array.from(cannedList.options).find((item) => item.value && item.value.toLowerCase() === shortcut.toLowerCase());
  return option ? option.dataset.text : null;
}

function bindCannedReplies(replyText, cannedList) {
  cannedList.addEventListener("change", () => {
    const text = cannedText(cannedList, cannedList.value);
    if (text !== null) insertAtCaret(replyText, text);
    cannedList.value = "";
  });
  replyText.addEventListener("keydown", (event) => {
    if (event.key !== "Tab" || event.shiftKey) return;
    const typed = replyText.value.slice(0, replyText.selectionStart).match(/(?:^|\s)\/([a-z0-9_-]+)$/i);
    const text = typed && cannedText(cannedList, typed[1]);
    if (text === null || !typed) return;
    event.preventDefault();
    insertAtCaret(replyText, text, replyText.selectionStart - typed[1].length - 1);
  });
}

function bindTyping(replyText, typingUrl) {
  replyText.addEventListener("input", () => {
    const now = Date.now();
    if (now - lastTypingAt < TYPING_EVERY_MS || !replyText.value.trim()) return;
    lastTypingAt = now;
    const token = replyText.form.querySelector('[name="csrfmiddlewaretoken"]').value;
    fetch(typingUrl, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": token } })
      .catch(() => {}); // nothing the agent need hear of: the next keystrokes ask again
  });
}

// A note is added without leaving the page (the reply being written stays); the socket's
// conversation.note refreshes the thread in every tab, this one too.
function bindNote(noteForm) {
  noteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch(noteForm.action, {
      method: "POST",
      body: new FormData(noteForm),
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    });
    const said = noteForm.querySelector('[data-role="note-error"]');
    said.textContent = response.ok ? "" : await response.text();
    if (response.ok) {
      noteForm.reset();
      refreshThread();
    }
  });
}

function bindConversation() {
  const replyText = inbox.querySelector('[data-role="reply-text"]');
  const cannedList = inbox.querySelector('[data-role="canned-reply"]');
  const typingUrl = inbox.querySelector("[data-typing-url]")?.dataset.typingUrl;
  if (replyText && cannedList) bindCannedReplies(replyText, cannedList);
  if (replyText && typingUrl) bindTyping(replyText, typingUrl);
  const noteForm = inbox.querySelector("form.add-note");
  if (noteForm) bindNote(noteForm);
}

// --- Beside the softphone: the inbox moves in place, the call goes on ---------------------------

let swaps = 0; // only the last asked-for page is shown

function isInboxPage(url) {
  const home = inbox.dataset.home;
  if (url.origin !== window.location.origin || !url.pathname.startsWith(home)) return false;
  const rest = url.pathname.slice(home.length);
  return rest === "" || /^\d+\/$/.test(rest);
}

async function swapTo(url, { method = "GET", body = null, isPushed = true } = {}) {
  const swap = ++swaps;
  inbox.setAttribute("aria-busy", "true");
  let response;
  try {
    response = await fetch(url, { method, body, credentials: "same-origin", headers: { Accept: "text/html" } });
  } catch {
    inbox.removeAttribute("aria-busy");
    if (method === "GET") window.location.assign(url); // offline or refused: the browser says why
    return;
  }
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  if (swap !== swaps) return;
  inbox.removeAttribute("aria-busy");
  const fresh = page.getElementById("inbox");
  if (!fresh) {
    window.location.assign(response.url); // not an inbox page (signed out, an error): shown as it is
    return;
  }
  for (const name of ["tab", "query", "open", "isAgent"]) inbox.dataset[name] = fresh.dataset[name] || "";
  inbox.replaceChildren(...fresh.childNodes);
  document.title = page.title;
  const shownUrl = method === "GET" || response.redirected ? response.url : window.location.href;
  if (isPushed && shownUrl !== window.location.href) window.history.pushState({ isInbox: true }, "", shownUrl);
  bindConversation();
  const heading = inbox.querySelector(".inbox-open h1");
  if (heading && method === "GET") {
    heading.tabIndex = -1; // the conversation swapped in is announced and read from its name
    heading.focus({ preventScroll: true });
  }
}

function isPlainClick(event) {
  return !event.defaultPrevented && event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey;
}

// "Call…" on a conversation: the docked dialer is filled in (and checked) instead of leaving the page.
function callFromDock(link) {
  const dialerPanel = document.querySelector('#dialer [data-role="dialer-panel"]');
  const asked = new URL(link.href, window.location.href).searchParams;
  if (!dialerPanel || !document.querySelector('#dialer [data-role="dial-form"]')) return false;
  dialerPanel.open = true;
  document.dispatchEvent(new CustomEvent("switchboard:command", {
    detail: { type: "show_contact", to: asked.get("call") || "", business_number_id: Number(asked.get("from")) || null },
  }));
  document.getElementById("dial-customer").focus();
  return true;
}

function dockInbox() {
  document.addEventListener("agent-frame", (event) => onFrame(event.detail));
  document.addEventListener("agent-socket", (event) => setLive(event.detail.isOpen));
  if (presence.dataset.connected === "true") setLive(true); // it opened before this script ran
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[href]");
    if (!link || !isPlainClick(event) || link.target || link.hasAttribute("download")) return;
    if (link.classList.contains("call-link")) {
      if (callFromDock(link)) event.preventDefault();
      return;
    }
    const url = new URL(link.href, window.location.href);
    if (!isInboxPage(url)) return;
    event.preventDefault();
    swapTo(url.href);
  });
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (event.defaultPrevented || !inbox.contains(form)) return;
    event.preventDefault();
    const body = new FormData(form, event.submitter);
    if (form.method.toLowerCase() === "get") {
      const url = new URL(form.action, window.location.href);
      url.search = new URLSearchParams(body).toString();
      swapTo(url.href);
    } else {
      swapTo(form.action, { method: "POST", body });
    }
  });
  window.addEventListener("popstate", () => swapTo(window.location.href, { isPushed: false }));
}

bindConversation();
if (presence) dockInbox();
else connect();
