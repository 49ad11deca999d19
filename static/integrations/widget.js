// Switchboard's call widget for a CRM's page:
//
//   <script src="https://switchboard.example.com/widget.js" data-key="KEY PREFIX"></script>
//
// puts the softphone in an iframe right after the tag (or inside `data-target`, a CSS selector).
// The page drives it with postMessage, to the iframe and our origin:
//
//   frame.contentWindow.postMessage({type: "switchboard.call", to: "+44 7700 900123"}, origin)
//
// commands: switchboard.call {to, business_number_id?}, switchboard.show_contact {to, name?}
// (shows whether the number may be called now, and the fallback if not), switchboard.hang_up,
// switchboard.sign_in {token} (a token the CRM's backend minted: POST /api/v1/widget/tokens/).
// It hears window "message" events from our origin: switchboard.ready, signed_in, status,
// ringing, dialing, refused, compliance, connected, ended, summary_ready, error. The same
// commands are at hand as window.Switchboard.call(to) and the like, and every event is also
// dispatched on the iframe element as a "switchboard" CustomEvent.
(() => {
  const script = document.currentScript;
  if (!script || !script.dataset.key) {
    console.error("Switchboard widget: the script tag needs data-key.");
    return;
  }
  const origin = new URL(script.src).origin;
  const frame = document.createElement("iframe");
  frame.src = `${origin}/widget/frame/?key=${encodeURIComponent(script.dataset.key)}`;
  frame.title = "Switchboard softphone";
  frame.allow = "microphone; autoplay";
  frame.style.cssText = `border: 1px solid #d0d7de; border-radius: 8px; width: ${script.dataset.width || "380px"}; height: ${script.dataset.height || "620px"};`;
  const target = script.dataset.target ? document.querySelector(script.dataset.target) : null;
  if (target) target.append(frame);
  else script.after(frame);

  const send = (message) => frame.contentWindow.postMessage(message, origin);
  frame.addEventListener("load", () => send({ type: "switchboard.hello" }));
  window.addEventListener("message", (event) => {
    if (event.source !== frame.contentWindow || event.origin !== origin) return;
    if (!event.data || typeof event.data.type !== "string" || !event.data.type.startsWith("switchboard.")) return;
    frame.dispatchEvent(new CustomEvent("switchboard", { detail: event.data }));
  });

  window.Switchboard = {
    frame,
    origin,
    call: (to, businessNumberId) => send({ type: "switchboard.call", to, business_number_id: businessNumberId }),
    showContact: (to, name) => send({ type: "switchboard.show_contact", to, name }),
    hangUp: () => send({ type: "switchboard.hang_up" }),
    signIn: (token) => send({ type: "switchboard.sign_in", token }),
  };
})();
