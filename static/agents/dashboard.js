// The agent dashboard: one WebSocket per tab; presence and calls are the server's, every tab mirrors them.
// The tab where the agent clicks Accept carries the call's audio (the softphone). Every frame is
// passed on to the page as an "agent-frame" event, and the socket's state as "agent-socket", so that a
// page embedding the softphone (the inbox) needs no socket of its own.

import { Softphone, microphoneAllowed, microphoneProblem, showLevel } from "./softphone.js";

const LABELS = {
  available: "Available", ringing: "Ringing", on_call: "On a call",
  wrap_up: "Wrap-up", away: "Away", offline: "Offline",
};
const RECONNECT_MAX_MS = 10000;
const CLOSE_KEY_REVOKED = 4410; // the call widget's key was revoked (integrations/consumers.py): it stays closed
const DRAFT_DELAY_MS = 400; // what the agent types in wrap-up is kept on the server this soon after
const MIC_TEST_MS = 5000;
const CHAT_REFRESH_MS = 5000; // the thread beside a call is read again this often

const root = document.getElementById("presence");
const statusLabel = root.querySelector('[data-role="status-label"]');
const connectionLabel = root.querySelector('[data-role="connection"]');
const errorLine = root.querySelector('[data-role="error"]');
const buttons = Array.from(root.querySelectorAll("[data-status-choice]"));
const ringPanel = document.getElementById("ring");
const callPanel = document.getElementById("in-call");
const chatPanel = document.getElementById("call-chat");
const dialer = document.getElementById("dialer");
const dialForm = role(dialer, "dial-form");

let socket = null;
let reconnectDelayMs = 500;
let isConnected = false;
let ringing = null; // {callId, deadline, timer, tone}
let callTimer = null;
let acceptedHere = null; // the call this tab accepted: it carries the audio
let dialingCallId = null; // a call this tab placed that the customer has not picked up yet
let chatTimer = null; // refreshes the thread of the chat beside the call
let checks = 0; // compliance checks the dialer asked for: only the last one's answer is shown
const pending = []; // frames asked for before the socket opened (the widget's first command)

const softphone = new Softphone({
  send,
  audioElement: role(callPanel, "remote-audio"),
  iceServers: JSON.parse(document.getElementById("ice-servers").textContent),
  onState: (text) => { role(callPanel, "media-state").textContent = text; },
  onMoved: (callId) => showAudioElsewhere(callId),
  microphoneMeter: role(callPanel, "microphone-level"),
  callerMeter: role(callPanel, "caller-level"),
});
const callControls = role(callPanel, "call-controls");

function role(panel, name) {
  return panel.querySelector(`[data-role="${name}"]`);
}

function flag(country) {
  if (!/^[A-Z]{2}$/.test(country || "")) return "";
  return String.fromCodePoint(...[...country].map((letter) => 0x1f1e6 + letter.charCodeAt(0) - 65));
}

function showStatus(status) {
  root.dataset.status = status;
  statusLabel.textContent = LABELS[status] || status;
  for (const button of buttons) {
    button.setAttribute("aria-pressed", String(button.dataset.statusChoice === status));
    // While rung the agent may go away or offline (the ring moves on), not available; on a call, nothing.
    const choice = button.dataset.statusChoice;
    button.disabled = !isConnected || status === "on_call" || (status === "ringing" && choice === "available");
  }
}

function setConnected(connected) {
  isConnected = connected;
  connectionLabel.textContent = connected ? "live" : "reconnecting…";
  root.dataset.connected = String(connected);
  showStatus(root.dataset.status);
  document.dispatchEvent(new CustomEvent("agent-socket", { detail: { isOpen: connected } }));
}

function showError(message) {
  errorLine.textContent = message;
  errorLine.hidden = !message;
}

function send(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

// What happens, for a page that embeds the softphone (the CRM's widget: static/integrations/).
function emit(type, detail = {}) {
  document.dispatchEvent(new CustomEvent("switchboard:event", { detail: { ...detail, type } }));
}
const isFramed = window.top !== window;

// A short two-tone ring, made in the page: no audio file to fetch.
function startTone() {
  try {
    const context = new AudioContext();
    const gain = context.createGain();
    gain.gain.value = 0.05;
    gain.connect(context.destination);
    const beep = () => {
      for (const [frequency, start] of [[440, 0], [480, 0.4]]) {
        const oscillator = context.createOscillator();
        oscillator.frequency.value = frequency;
        oscillator.connect(gain);
        oscillator.start(context.currentTime + start);
        oscillator.stop(context.currentTime + start + 0.35);
      }
    };
    beep();
    const interval = setInterval(beep, 2000);
    return () => { clearInterval(interval); context.close(); };
  } catch {
    return () => {};
  }
}

function stopRinging(callId) {
  if (!ringing || (callId !== undefined && ringing.callId !== callId)) return;
  clearInterval(ringing.timer);
  ringing.stopTone();
  ringing = null;
  ringPanel.hidden = true;
}

function ring(frame) {
  stopRinging();
  role(ringPanel, "flag").textContent = flag(frame.country);
  role(ringPanel, "caller-name").textContent = frame.caller_name || frame.caller_number;
  role(ringPanel, "caller-number").textContent = frame.caller_number;
  role(ringPanel, "country").textContent = frame.country ? `(${frame.country})` : "";
  role(ringPanel, "queue").textContent = frame.queue;
  role(ringPanel, "waited").textContent = `${frame.waited_s} s`;
  showLastCall(role(ringPanel, "last-call"), frame.last_call);
  showRingChat(role(ringPanel, "chat"), frame.chat);
  const deadline = Date.now() + frame.ring_timeout_s * 1000;
  const tick = () => {
    role(ringPanel, "countdown").textContent = Math.max(0, Math.round((deadline - Date.now()) / 1000));
  };
  tick();
  ringing = {
    callId: frame.call_id, caller: frame.caller_name || frame.caller_number, chat: frame.chat || null,
    timer: setInterval(tick, 500), stopTone: startTone(),
  };
  ringPanel.hidden = false;
  emit("ringing", {
    call_id: frame.call_id, caller_number: frame.caller_number, caller_name: frame.caller_name || "", queue: frame.queue,
    conversation_id: frame.chat ? frame.chat.conversation_id : null,
  });
}

// The chat the caller came from (the warm handoff): what the assistant learnt, and where to read it.
function showChatLink(link, chat) {
  link.href = chat.url;
  if (isFramed) link.target = "_blank"; // the inbox, in Switchboard itself
}

function showRingChat(element, chat) {
  element.hidden = !chat;
  if (!chat) return;
  role(element, "chat-score").textContent = chat.score === null ? "not scored" : `${chat.score}/100`;
  role(element, "chat-sentiment").textContent = chat.sentiment ? ` · ${chat.sentiment}` : "";
  role(element, "chat-summary").textContent = chat.summary;
  role(element, "chat-summary").hidden = !chat.summary;
  const fields = role(element, "chat-fields");
  fields.replaceChildren(...chat.fields.flatMap((field) => {
    const term = document.createElement("dt");
    term.textContent = field.label;
    const value = document.createElement("dd");
    value.textContent = field.value;
    return [term, value];
  }));
  fields.hidden = chat.fields.length === 0;
  showChatLink(role(element, "chat-link"), chat);
}

// During the call: the chat's thread beside the softphone, kept fresh while the customer writes.
// Inside the CRM's widget the link opens the chat in Switchboard instead.
async function refreshCallChat(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (response.ok) role(chatPanel, "chat-thread").innerHTML = await response.text();
}

function showCallChat(chat) {
  hideCallChat();
  if (!chat) return;
  showChatLink(role(chatPanel, "chat-link"), chat);
  chatPanel.hidden = false;
  if (isFramed) return;
  const refresh = () => refreshCallChat(chat.thread_url).catch(() => {});
  refresh();
  chatTimer = setInterval(refresh, CHAT_REFRESH_MS);
}

function hideCallChat() {
  clearInterval(chatTimer);
  chatTimer = null;
  chatPanel.hidden = true;
  role(chatPanel, "chat-thread").replaceChildren();
}

// The caller's previous call, so the agent does not ask again what they already told us.
function showLastCall(element, lastCall) {
  element.hidden = !lastCall;
  if (!lastCall) return;
  const when = lastCall.ended_at ? new Date(lastCall.ended_at).toLocaleDateString() : "";
  const notes = lastCall.notes ? ` · “${lastCall.notes}”` : "";
  const summary = lastCall.summary ? ` — ${lastCall.summary}` : "";
  element.textContent = `Last call ${when} with ${lastCall.agent}: ${lastCall.outcome}${notes}${summary}`;
}

// This tab shows the call but another one carries its audio: offer to take it here.
function showAudioElsewhere(callId) {
  if (acceptedHere === callId) acceptedHere = null;
  callControls.hidden = true;
  role(callPanel, "levels").hidden = true;
  role(callPanel, "media-state").textContent = "audio in another tab";
  const take = role(callPanel, "take-audio");
  take.dataset.callId = callId;
  take.hidden = false;
}

function takeAudioHere(callId) {
  acceptedHere = callId;
  role(callPanel, "take-audio").hidden = true;
  callControls.hidden = false;
  role(callPanel, "levels").hidden = false;
  softphone.start(callId).catch((error) => showError(`Microphone: ${error.message}`));
}

// The call is over for this agent: its audio closed, its controls put away.
function leaveCall() {
  dialingCallId = null;
  showDialingControls(false);
  clearInterval(callTimer);
  softphone.close();
  acceptedHere = null;
  callControls.hidden = true;
  role(callPanel, "levels").hidden = true;
  setPressed("mute", false);
  setPressed("hold", false);
  role(callPanel, "media-state").textContent = "";
  role(callPanel, "notice-state").textContent = "";
}

function showCall(state, caller, since = Date.now()) {
  callPanel.hidden = false;
  role(callPanel, "call-state").textContent = state;
  if (caller) role(callPanel, "call-with").textContent = caller;
  clearInterval(callTimer);
  role(callPanel, "take-audio").hidden = true;
  if (state === "On a call") {
    const started = since;
    const tick = () => {
      const seconds = Math.round((Date.now() - started) / 1000);
      role(callPanel, "call-timer").textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
    };
    tick();
    callTimer = setInterval(tick, 1000);
  }
}

const HANDLERS = {
  "agent.status": (frame) => {
    showStatus(frame.status);
    emit("status", { status: frame.status });
    // A wrap-up with something typed in it stays until it is filed: what the agent typed is never
    // thrown away (the server keeps it too, and files it if the wrap-up time runs out).
    const isLeavingCall = frame.status === "available" || frame.status === "away" || frame.status === "offline";
    if (isLeavingCall && (wrapUpForm.hidden || !wrapUpHasText())) hideWrapUp();
  },
  // The server asks every few seconds whether this tab is still here: a tab that stops answering
  // (its laptop closed, its server gone) stops being rung. Answered from here, not from a timer: a
  // browser runs a background tab's timers once a minute at most, its messages at once.
  "presence.ping": () => send({ type: "presence.heartbeat" }),
  "call.offered": ring,
  "call.taken": (frame) => {
    const isRingHere = ringing && ringing.callId === frame.call_id;
    const caller = isRingHere ? ringing.caller : "";
    const chat = isRingHere ? ringing.chat : null;
    stopRinging(frame.call_id);
    showCall("On a call", caller);
    showCallChat(chat);
    if (acceptedHere === frame.call_id) takeAudioHere(frame.call_id);
    else showAudioElsewhere(frame.call_id);
    emit("connected", { call_id: frame.call_id, direction: "inbound" });
  },
  // A tab (re)connected during a call (the page was reloaded, or opened again): the only open tab
  // takes the audio back at once; with other tabs open, one of them may still carry it.
  "call.resume": (frame) => {
    stopRinging();
    showCall("On a call", frame.caller, Date.parse(frame.connected_at));
    showCallChat(frame.chat);
    if (frame.open_tabs <= 1) takeAudioHere(frame.call_id);
    else showAudioElsewhere(frame.call_id);
  },
  "call.media_answer": (frame) => {
    role(callPanel, "notice-state").textContent = frame.is_notice_playing
      ? "The customer is hearing the recording notice: they will hear you when it ends."
      : "";
    softphone.answer(frame);
  },
  "call.notice_finished": () => { role(callPanel, "notice-state").textContent = ""; },
  "permission.lost": (frame) => {
    const item = document.createElement("li");
    item.textContent = frame.message;
    role(root, "notices").append(item);
  },
  "summary.ready": (frame) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `/calls/${frame.call_id}/`;
    if (isFramed) link.target = "_blank"; // the call's page, in Switchboard itself
    link.textContent = `The summary of your call with ${frame.contact} is ready.`;
    item.append(link);
    role(root, "notices").append(item);
    emit("summary_ready", { call_id: frame.call_id });
  },
  "call.mute.changed": (frame) => setPressed("mute", frame.is_on),
  "call.hold.changed": (frame) => setPressed("hold", frame.is_on),
  "call.withdrawn": (frame) => stopRinging(frame.call_id),
  "call.accept.result": (frame) => {
    if (!frame.is_won) {
      acceptedHere = null;
      stopRinging(frame.call_id);
      showError("That call was answered elsewhere or has ended.");
    }
  },
  "call.decline.result": (frame) => stopRinging(frame.call_id),
  "call.wrap_up.result": () => hideWrapUp(),
  // Filed in any tab (or by the wrap-up timer, with what was typed): every tab closes the form.
  "call.filed": (frame) => {
    if (wrapUpForm.dataset.callId !== String(frame.call_id)) return;
    hideWrapUp();
    if (frame.is_timed_out) showError("The wrap-up time ran out: what you had typed was filed with the call.");
  },
  // What the agent types in another tab: shown here too, unless the agent is typing here (or this
  // tab has changes not sent yet; the echo of this tab's own last draft changes nothing).
  "call.wrap_up_draft": (frame) => {
    const isTypingHere = wrapUpForm.contains(document.activeElement) || draftTimer !== null;
    if (wrapUpForm.dataset.callId !== String(frame.call_id) || isTypingHere) return;
    fillWrapUp(frame);
  },
  "call.ended": (frame) => {
    emit("ended", { call_id: frame.call_id });
    showWrapUp(frame);
    leaveCall();
    showCall("Call ended: wrap-up", "");
  },
  // The call's audio from this agent was lost for too long (their network, or the tab that carried
  // it closed): the call went to another agent, and the agent was set away.
  "call.taken_back": (frame) => {
    emit("taken_back", { call_id: frame.call_id });
    leaveCall();
    callPanel.hidden = true;
    showError(
      "Your audio was lost, so the customer went to another agent. You are set to Away: check your " +
      "connection and microphone, then set yourself Available.",
    );
  },
  // Click-to-call: the compliance engine decided; a refusal lists every reason and the fallback.
  "call.dial.result": (frame) => {
    if (frame.is_placed) {
      dialingCallId = frame.call_id;
      // The tab that placed the call carries its audio; a reloaded or reopened tab does only if
      // it is the agent's one open tab (`open_tabs` comes with frames sent on connect).
      if (frame.open_tabs === undefined || frame.open_tabs <= 1) acceptedHere = frame.call_id;
      if (dialForm) clearDialerOutcome();
      showCall("Calling…", frame.customer);
      showDialingControls(true);
      emit("dialing", { call_id: frame.call_id, customer_number: frame.customer_number });
      return;
    }
    acceptedHere = null;
    if (frame.error) {
      showDialError(frame.error);
      return;
    }
    showRefusal(frame);
    emit("refused", { customer_number: frame.customer_number, refusals: frame.refusals, fallback: frame.fallback });
  },
  // Whether the customer in the dialer may be called now: the Call button says why not.
  "call.check.result": (frame) => {
    if (!dialForm || frame.check_id !== checks) return; // the agent typed another, or dialled, since
    if (frame.error) {
      showDialError(frame.error);
      return;
    }
    setCallButton(frame.is_allowed, frame.refusals);
    if (!frame.is_allowed) showRefusal(frame);
    // What an allowed call rests on, and what to beware of (one more unanswered call revokes).
    role(dialer, "dial-notice").textContent = [
      frame.allowed_because, ...(frame.warnings || []).map((warning) => warning.text),
    ].filter(Boolean).join(" ");
    emit("compliance", {
      customer_number: frame.customer_number, is_allowed: frame.is_allowed,
      refusals: frame.refusals, fallback: frame.fallback, warnings: frame.warnings,
      allowed_because: frame.allowed_because,
    });
  },
  "call.outbound_ringing": () => { role(callPanel, "call-state").textContent = "Ringing the customer…"; },
  "call.outbound_connected": (frame) => {
    dialingCallId = null;
    showDialingControls(false);
    showCall("On a call", frame.caller);
    if (acceptedHere === frame.call_id) takeAudioHere(frame.call_id);
    else showAudioElsewhere(frame.call_id);
    emit("connected", { call_id: frame.call_id, direction: "outbound" });
  },
  // The fallback sent, or why not (the refusal stays: it is still true).
  "call.fallback.result": (frame) => {
    if (frame.error) {
      showDialError(frame.error);
      return;
    }
    clearDialerOutcome();
    role(dialer, "dial-notice").textContent = frame.message;
  },
  error: (frame) => {
    if (frame.code === "media_not_ready" && softphone.offerAgain()) return;
    showError(frame.message);
    emit("error", { code: frame.code, message: frame.message });
  },
};

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${window.location.host}${root.dataset.socketPath}`);
  socket.addEventListener("open", () => {
    reconnectDelayMs = 500;
    setConnected(true);
    showError("");
    send({ type: "presence.heartbeat" }); // from now on this tab's socket lives by its heartbeats
    for (const frame of pending.splice(0)) send(frame);
  });
  socket.addEventListener("message", (message) => {
    const frame = JSON.parse(message.data);
    const handler = HANDLERS[frame.type];
    try {
      if (handler) handler(frame);
    } finally {
      // One agent socket a page: the page's other scripts (the inbox) read its frames from here.
      document.dispatchEvent(new CustomEvent("agent-frame", { detail: frame }));
    }
  });
  socket.addEventListener("close", (event) => {
    setConnected(false);
    if (event.code === CLOSE_KEY_REVOKED) {
      const message = "This CRM's access to Switchboard was revoked: the widget is closed.";
      connectionLabel.textContent = "closed";
      showError(message);
      emit("error", { code: "key_revoked", message });
      return;
    }
    setTimeout(connect, reconnectDelayMs);
    reconnectDelayMs = Math.min(reconnectDelayMs * 2, RECONNECT_MAX_MS);
  });
}

const wrapUpForm = role(callPanel, "wrap-up");

// While a placed call rings there is no audio yet: only Hang up applies.
function showDialingControls(isDialing) {
  callControls.hidden = false;
  for (const action of ["mute", "hold"]) callPanel.querySelector(`[data-action="${action}"]`).hidden = isDialing;
}

// The dialer shows its own outcome, one at a time, in the dialer: a refusal with the fallback, an
// error next to the number, or what was sent. Asking again (a check, a call) clears the last one.
function clearDialerOutcome() {
  role(dialer, "refusal").hidden = true;
  role(dialer, "dial-notice").textContent = "";
  showDialError(null);
  setCallButton(null, []);
}

function showDialError(error) {
  const line = role(dialer, "dial-error");
  line.textContent = error ? error.message : "";
  line.hidden = !error;
  if (error) emit("error", { code: error.code, message: error.message });
}

function setCallButton(isAllowed, refusals) {
  const call = dialForm.querySelector("button[type=submit]");
  if (isAllowed === null) delete call.dataset.allowed;
  else call.dataset.allowed = String(isAllowed);
  call.title = refusals.map((refusal) => refusal.reason).join(" ");
}

function showRefusal(frame) {
  showDialError(null);
  setCallButton(false, frame.refusals);
  const panel = role(dialer, "refusal");
  const count = frame.refusals.length;
  role(panel, "refusal-title").textContent = `${frame.customer} cannot be called now (${count} reason${count === 1 ? "" : "s"}):`;
  role(panel, "reasons").replaceChildren(...frame.refusals.map((refusal) => {
    const item = document.createElement("li");
    item.dataset.code = refusal.code;
    const clears = refusal.clears_at ? ` (until ${new Date(refusal.clears_at).toLocaleString()})` : "";
    item.textContent = refusal.reason + clears;
    return item;
  }));
  role(panel, "fallback").textContent = frame.fallback ? frame.fallback.reason : "";
  const button = panel.querySelector('[data-action="fallback"]');
  const kind = frame.fallback ? frame.fallback.kind : "";
  button.hidden = !kind;
  button.textContent = kind === "permission_request" ? "Ask for permission to call" : 'Send a "Call us" button';
  button.dataset.kind = kind;
  button.dataset.customer = frame.customer_number;
  button.dataset.businessNumberId = frame.business_number_id;
  panel.hidden = false;
}

let draftTimer = null;

function showWrapUp(frame) {
  // The same call again (this tab's socket reconnected): what is in the form is the newest.
  if (!wrapUpForm.hidden && wrapUpForm.dataset.callId === String(frame.call_id)) return;
  const select = wrapUpForm.elements.disposition;
  select.replaceChildren(new Option("Choose…", ""), ...frame.dispositions.map(([value, label]) => new Option(label, value)));
  fillWrapUp(frame.draft || { disposition: "", notes: "" });
  wrapUpForm.dataset.callId = frame.call_id;
  wrapUpForm.hidden = false;
}

function fillWrapUp({ disposition, notes }) {
  wrapUpForm.elements.disposition.value = disposition;
  wrapUpForm.elements.notes.value = notes;
}

function wrapUpHasText() {
  return Boolean(wrapUpForm.elements.disposition.value || wrapUpForm.elements.notes.value);
}

function hideWrapUp() {
  clearTimeout(draftTimer);
  draftTimer = null;
  wrapUpForm.hidden = true;
  wrapUpForm.dataset.callId = "";
  callPanel.hidden = true;
  hideCallChat(); // beside the call and its wrap-up, not after
}

function sendDraft() {
  clearTimeout(draftTimer);
  draftTimer = null;
  if (wrapUpForm.hidden || !wrapUpForm.dataset.callId) return;
  send({
    type: "call.wrap_up_draft",
    call_id: Number(wrapUpForm.dataset.callId),
    disposition: wrapUpForm.elements.disposition.value,
    notes: wrapUpForm.elements.notes.value,
  });
}

wrapUpForm.addEventListener("input", () => {
  clearTimeout(draftTimer);
  draftTimer = setTimeout(sendDraft, DRAFT_DELAY_MS);
});
window.addEventListener("pagehide", () => { if (draftTimer !== null) sendDraft(); });

wrapUpForm.addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(draftTimer);
  draftTimer = null;
  send({
    type: "call.wrap_up",
    call_id: Number(wrapUpForm.dataset.callId),
    disposition: wrapUpForm.elements.disposition.value,
    notes: wrapUpForm.elements.notes.value,
    next_status: event.submitter?.value === "away" ? "away" : "available",
  });
});

// The microphone test: the level live for a few seconds, then the microphone is let go.
const micTestButton = root.querySelector('[data-action="mic-test"]');
micTestButton.addEventListener("click", async () => {
  const state = role(root, "mic-test-state");
  micTestButton.disabled = true;
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    state.textContent = microphoneProblem(error);
    micTestButton.disabled = false;
    return;
  }
  state.textContent = "Speak now: the bar shows what your microphone hears.";
  role(root, "mic-test-meter").hidden = false;
  let loudest = 0;
  const stop = showLevel(stream, role(root, "mic-test-level"), (level) => { loudest = Math.max(loudest, level); });
  setTimeout(() => {
    stop();
    for (const track of stream.getTracks()) track.stop();
    role(root, "mic-test-meter").hidden = true;
    state.textContent = loudest > 0.2
      ? "Your microphone works."
      : "Your microphone hears (almost) nothing: check that it is not muted, then test again.";
    micTestButton.disabled = false;
  }, MIC_TEST_MS);
});

function setPressed(action, isOn) {
  callPanel.querySelector(`[data-action="${action}"]`).setAttribute("aria-pressed", String(isOn));
}

for (const button of buttons) {
  button.addEventListener("click", async () => {
    const status = button.dataset.statusChoice;
    if (status === "available" && !(await microphoneAllowed())) {
      showError("Allow this page to use your microphone to take calls.");
      return;
    }
    send({ type: "presence.set", status });
  });
}
ringPanel.querySelector('[data-action="accept"]').addEventListener("click", () => {
  if (!ringing) return;
  acceptedHere = ringing.callId;
  send({ type: "call.accept", call_id: ringing.callId });
});
for (const action of ["mute", "hold"]) {
  callPanel.querySelector(`[data-action="${action}"]`).addEventListener("click", (event) => {
    const isOn = event.currentTarget.getAttribute("aria-pressed") !== "true";
    if (action === "mute") softphone.mute(isOn);
    else softphone.hold(isOn);
  });
}
callPanel.querySelector('[data-action="hangup"]').addEventListener("click", () => {
  // Before the customer picks up there is no softphone yet: give up the call itself.
  if (dialingCallId !== null) send({ type: "call.hangup", call_id: dialingCallId });
  else softphone.hangUp();
});
function sendWhenOpen(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) send(frame);
  else pending.push(frame);
}

// Ask whether the customer in the dialer may be called from the chosen number (the answer
// explains the Call button and offers the fallback before the agent tries).
function checkDialer() {
  const customer = dialForm.elements.customer.value.trim();
  checks += 1; // an answer to an earlier check is about another number
  clearDialerOutcome();
  if (!customer) return;
  sendWhenOpen({
    type: "call.check",
    check_id: checks,
    business_number_id: Number(dialForm.elements.business_number.value),
    customer,
  });
}

// Commands from a page that embeds the softphone (the CRM's widget).
function fillDialer(to, businessNumberId) {
  dialForm.elements.customer.value = to;
  const fromNumber = dialForm.elements.business_number;
  if (businessNumberId && [...fromNumber.options].some((option) => option.value === String(businessNumberId))) {
    fromNumber.value = String(businessNumberId);
  }
}
const COMMANDS = {
  call: ({ to, business_number_id: businessNumberId }) => {
    fillDialer(to, businessNumberId);
    dialForm.requestSubmit();
  },
  show_contact: ({ to, business_number_id: businessNumberId }) => {
    fillDialer(to, businessNumberId);
    checkDialer();
  },
  hang_up: () => callPanel.querySelector('[data-action="hangup"]').click(),
};
document.addEventListener("switchboard:command", (event) => {
  const command = COMMANDS[event.detail.type];
  if (!dialForm && event.detail.type !== "hang_up") {
    emit("error", { code: "no_number", message: "None of the agent's queues serves a number to call from." });
    return;
  }
  if (command) command(event.detail);
});

if (dialForm) {
  // From a contact's page: the dialer is filled in; the agent clicks Call.
  const asked = new URLSearchParams(window.location.search);
  if (asked.get("call")) dialForm.elements.customer.value = asked.get("call");
  if (asked.get("from")) dialForm.elements.business_number.value = asked.get("from");
  if (asked.get("call")) checkDialer();
  dialForm.elements.customer.addEventListener("change", checkDialer);
  dialForm.elements.business_number.addEventListener("change", checkDialer);
  dialForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    checks += 1; // the call's answer says it all: an earlier check's is stale
    clearDialerOutcome();
    if (!(await microphoneAllowed())) {
      showDialError({ code: "microphone", message: "Allow this page to use your microphone to place calls." });
      return;
    }
    sendWhenOpen({
      type: "call.dial",
      business_number_id: Number(dialForm.elements.business_number.value),
      customer: dialForm.elements.customer.value,
    });
  });
  dialer.querySelector('[data-action="fallback"]').addEventListener("click", (event) => {
    const button = event.currentTarget;
    showDialError(null);
    role(dialer, "dial-notice").textContent = "";
    send({
      type: "call.fallback",
      business_number_id: Number(button.dataset.businessNumberId),
      customer: button.dataset.customer,
      kind: button.dataset.kind,
    });
  });
}
role(callPanel, "take-audio").addEventListener("click", (event) => {
  takeAudioHere(Number(event.currentTarget.dataset.callId));
});
ringPanel.querySelector('[data-action="decline"]').addEventListener("click", () => {
  if (ringing) send({ type: "call.decline", call_id: ringing.callId });
});

showStatus(root.dataset.status);
setConnected(false);
connect();
