// The softphone: the agent's WebRTC leg to the media process that holds the customer's call.
// Signalling goes over the dashboard's WebSocket: our offer (with every ICE candidate, no
// trickle), the media process's answer back.

export class Softphone {
  constructor({ send, audioElement, iceServers, onState, onMoved }) {
    this.send = send;
    this.audioElement = audioElement;
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
    const connection = new RTCPeerConnection({ iceServers: this.iceServers });
    this.connection = connection;
    for (const track of this.microphone.getAudioTracks()) connection.addTrack(track, this.microphone);
    connection.addEventListener("track", (event) => {
      this.audioElement.srcObject = event.streams[0] || new MediaStream([event.track]);
      this.audioElement.play().catch(() => {});
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
