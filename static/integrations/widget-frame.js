// The call widget inside the CRM's page (integrations/widget.py says how it fits together).
//
// The host page says hello first; only a parent window of one of the key's allowed origins is
// listened to, and events (which name customers) go to that origin only. Once the agent is
// signed in, the dashboard's own softphone runs here (static/agents/dashboard.js): commands from
// the host reach it as `switchboard:command` DOM events, and its `switchboard:event`s go back up.

const config = JSON.parse(document.getElementById("widget-config").textContent);
const signInPanel = document.getElementById("widget-sign-in");
const signInForm = signInPanel.querySelector('[data-role="sign-in"]');
const signInError = signInPanel.querySelector('[data-role="sign-in-error"]');
const waiting = document.getElementById("widget-waiting");
const softphone = document.getElementById("widget-softphone");
const foot = document.getElementById("widget-foot");
const COMMANDS = new Set(["call", "show_contact", "hang_up"]);

let hostOrigin = null;
let agent = null;
const storageKey = () => `switchboard-widget:${config.key}:${hostOrigin}`;

function post(type, detail = {}) {
  if (hostOrigin) window.parent.postMessage({ ...detail, type: `switchboard.${type}` }, hostOrigin);
}

function showSignInError(message) {
  signInError.textContent = message;
  signInError.hidden = !message;
}

async function signIn(credentials) {
  showSignInError("");
  let response;
  try {
    response = await fetch("/widget/session/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key: config.key, origin: hostOrigin, ...credentials }),
    });
  } catch {
    showSignInError("Switchboard cannot be reached: try again.");
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    signInPanel.hidden = false;
    showSignInError(body.detail || "Signing in failed.");
    post("error", { code: body.code || "sign_in_failed", message: body.detail || "" });
    return;
  }
  sessionStorage.setItem(storageKey(), body.session);
  await start(body.session, body.agent);
}

async function start(session, knownAgent) {
  const response = await fetch("/widget/softphone/", { headers: { Authorization: `Widget ${session}` } });
  if (!response.ok) {
    sessionStorage.removeItem(storageKey());
    signInPanel.hidden = false;
    post("ready", { signed_in: false });
    return;
  }
  softphone.innerHTML = await response.text();
  agent = knownAgent || { name: softphone.querySelector("#presence h1")?.textContent || "" };
  signInPanel.hidden = true;
  foot.hidden = false;
  await import(config.dashboard_url); // runs the softphone on the panels just put in place
  post("signed_in", { agent });
}

// The softphone's events, to the host page.
document.addEventListener("switchboard:event", (event) => post(event.detail.type, event.detail));

window.addEventListener("message", (event) => {
  if (event.source !== window.parent || !config.allowed_origins.includes(event.origin)) return;
  const data = event.data;
  if (!data || typeof data !== "object" || typeof data.type !== "string") return;
  if (data.type === "switchboard.hello") {
    if (hostOrigin === null) {
      hostOrigin = event.origin;
      waiting.hidden = true;
      const kept = sessionStorage.getItem(storageKey());
      if (kept) start(kept);
      else signInPanel.hidden = false;
    }
    post("ready", { signed_in: agent !== null });
    return;
  }
  if (event.origin !== hostOrigin) return;
  if (data.type === "switchboard.sign_in") {
    if (typeof data.token === "string") signIn({ token: data.token });
    return;
  }
  const command = data.type.slice("switchboard.".length);
  if (!data.type.startsWith("switchboard.") || !COMMANDS.has(command)) {
    post("error", { code: "unknown_command", message: `Unknown command: ${data.type}` });
    return;
  }
  if (agent === null) {
    post("error", { code: "signed_out", message: "The agent has not signed in to the widget yet." });
    return;
  }
  document.dispatchEvent(new CustomEvent("switchboard:command", {
    detail: { type: command, to: String(data.to ?? ""), name: String(data.name ?? ""),
              business_number_id: data.business_number_id },
  }));
});

signInForm.addEventListener("submit", (event) => {
  event.preventDefault();
  signIn({ username: signInForm.elements.username.value, password: signInForm.elements.password.value });
});

foot.querySelector('[data-action="sign-out"]').addEventListener("click", () => {
  sessionStorage.removeItem(storageKey());
  post("signed_out");
  window.location.reload(); // the host says hello again on load
});
