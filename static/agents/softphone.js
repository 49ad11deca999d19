// The softphone: the agent's WebRTC leg to the media process that holds the customer's call.
// Signalling goes over the dashboard's WebSocket: our offer (with every ICE candidate, no
// trickle), the media process's answer back.

export class Softphone {
  constructor({ send, audioElement, iceServers, onState, onMoved, microphoneMeter, callerMeter }) {
    this.send = send;
    this.audioElement = audioElement;
    this.microphoneMeter = microphoneMeter; // <meter> elements: what the agent says, what they hear
    this.callerMeter = callerMeter;
    this.stopMeters = [];
    this.iceServers = iceServers;
    this.onState = onState;
    this.onMoved = onMoved;
    this.callId = null;
    this.connection = null;
    this.microphone = null;
  }

  async start(callId) {
    this.close();
    this.callId = callId;
    this.onState("connecting audio…");
    this.microphone = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true } });
    if (this.microphoneMeter) this.stopMeters.push(showLevel(this.microphone, this.microphoneMeter));
    const connection = new RTCPeerConnection({ iceServers: this.iceServers });
    this.connection = connection;
    for (const track of this.microphone.getAudioTracks()) connection.addTrack(track, this.microphone);
    connection.addEventListener("track", (event) => {
      this.audioElement.srcObject = event.streams[0] || new MediaStream([event.track]);
      this.audioElement.play().catch(() => {});
      if (this.callerMeter) this.stopMeters.push(showLevel(this.audioElement.srcObject, this.callerMeter));
    });
    connection.addEventListener("connectionstatechange", () => {
      const state = connection.connectionState;
      this.onState(state === "connected" ? "audio connected" : state === "failed" ? "audio failed" : `audio ${state}`);
    });
    await connection.setLocalDescription(await connection.createOffer());
    await this.#iceGathered(connection);
    this.offersSent = 0;
    this.#sendOffer();
  }

  // The media process had not taken the call yet when the offer arrived: send it again shortly.
  offerAgain() {
    if (!this.connection || this.offersSent >= 20) return false;
    setTimeout(() => this.#sendOffer(), 250);
    return true;
  }

  #sendOffer() {
    if (!this.connection) return;
    this.offersSent += 1;
    this.send({ type: "call.media_offer", call_id: this.callId, sdp: this.connection.localDescription.sdp });
  }

  async answer(frame) {
    if (!this.connection || frame.call_id !== this.callId) return;
    if (this.connection.signalingState !== "have-local-offer") {
      // An answer to another tab's offer: the call's audio has moved to that tab.
      this.close();
      this.onMoved(frame.call_id);
      return;
    }
    if (frame.error) {
      if (frame.is_ready === false && this.offerAgain()) return; // the media process was taking the call
      this.onState(`audio failed: ${frame.error}`);
      return;
    }
    await this.connection.setRemoteDescription({ type: "answer", sdp: frame.sdp });
  }

  mute(isOn) {
    for (const track of this.microphone?.getAudioTracks() || []) track.enabled = !isOn;
    this.send({ type: "call.mute", call_id: this.callId, is_on: isOn });
  }

  hold(isOn) {
    this.send({ type: "call.hold", call_id: this.callId, is_on: isOn });
  }

  hangUp() {
    if (this.callId !== null) this.send({ type: "call.hangup", call_id: this.callId });
  }

  close() {
    for (const stop of this.stopMeters.splice(0)) stop();
    this.connection?.close();
    this.connection = null;
    for (const track of this.microphone?.getTracks() || []) track.stop();
    this.microphone = null;
    this.audioElement.srcObject = null;
  }

  #iceGathered(connection) {
    if (connection.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (connection.iceGatheringState === "complete") {
          connection.removeEventListener("icegatheringstatechange", check);
          resolve();
        }
      };
      connection.addEventListener("icegatheringstatechange", check);
      setTimeout(resolve, 3000); // send what was gathered rather than hang
    });
  }
}

// Whether the browser lets the page use a microphone: asked before the agent goes available.
export async function microphoneAllowed() {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    for (const track of stream.getTracks()) track.stop();
    return true;
  } catch {
    return false;
  }
}

// How loud a stream is, 0 (silence, -60 dBFS or less) to 1 (full scale), shown live on a <meter>
// through a Web Audio AnalyserNode. Returns a function that stops it (and sets the meter to 0);
// `onLevel` hears each reading.
export function showLevel(stream, meter, onLevel = () => {}) {
  let context;
  try {
    context = new AudioContext();
  } catch {
    return () => {};
  }
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  context.createMediaStreamSource(stream).connect(analyser);
  context.resume().catch(() => {}); // a page reloaded mid-call has had no click yet
  const samples = new Float32Array(analyser.fftSize);
  const interval = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    const rms = Math.sqrt(samples.reduce((sum, sample) => sum + sample * sample, 0) / samples.length);
    const level = rms > 0 ? Math.min(1, Math.max(0, (20 * Math.log10(rms) + 60) / 60)) : 0;
    meter.value = level;
    onLevel(level);
  }, 100);
  return () => {
    clearInterval(interval);
    context.close().catch(() => {});
    meter.value = 0;
  };
}

// What to tell the agent when the microphone cannot be opened.
export function microphoneProblem(error) {
  if (error.name === "NotAllowedError" || error.name === "SecurityError") {
    return "The browser may not use your microphone: allow it for this page (the icon in the address bar), then test again.";
  }
  if (error.name === "NotFoundError" || error.name === "OverconstrainedError") {
    return "No microphone found: connect one, then test again.";
  }
  if (error.name === "NotReadableError") {
    return "The microphone could not be started: another program may be using it.";
  }
  return `The microphone could not be opened: ${error.message}`;
}
