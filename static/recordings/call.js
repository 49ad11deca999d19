// A call's page: the transcript follows the recording as it plays (a line clicked, or focused and
// given Enter or Space, plays from its start), and the work after the call reports its progress
// live until the summary is ready.

const root = document.getElementById("call");
const player = root.querySelector('[data-role="player"]');
const lines = [...root.querySelectorAll('[data-role="transcript"] li')];

function follow() {
  const now = player.currentTime;
  for (const line of lines) {
    const isCurrent = Number(line.dataset.start) <= now && now < Number(line.dataset.end);
    if (isCurrent && !line.classList.contains("current")) line.scrollIntoView({ block: "nearest" });
    line.classList.toggle("current", isCurrent);
  }
}

function playFrom(line) {
  player.currentTime = Number(line.dataset.start);
  player.play();
}

if (player) {
  player.addEventListener("timeupdate", follow);
  for (const line of lines) {
    line.addEventListener("click", () => {
      if (!window.getSelection().isCollapsed) return; // words being selected, to copy: not a seek
      playFrom(line);
    });
    line.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault(); // Space would scroll the transcript
      playFrom(line);
    });
  }
}

const PROGRESS = {
  queued: (frame) => `Queued for transcription${frame.in_line ? `: number ${frame.in_line} in line` : ""}…`,
  transcribing: (frame) => `Transcribing: ${frame.progress} %…`,
  summarising: () => "Summarising…",
  failed: (frame) => `The transcript could not be made: ${frame.failure || "unknown reason"}`,
};

function listen() {
  if (root.dataset.status === "done" || root.dataset.status === "none") return;
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}${root.dataset.socketPath}`);
  socket.addEventListener("message", (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "recording.progress" && PROGRESS[frame.status]) {
      root.dataset.status = frame.status;
      for (const shown of root.querySelectorAll('[data-role="progress"]')) shown.textContent = PROGRESS[frame.status](frame);
    } else if (frame.type === "summary.ready") {
      root.dataset.status = "done";
      if (player && !player.paused) {
        // Not while someone listens: they reload when they like.
        for (const shown of root.querySelectorAll('[data-role="progress"]')) {
          shown.innerHTML = 'The summary is ready: <a href="">show it</a>.';
        }
      } else {
        window.location.reload(); // the transcript and the summary, rendered by the server
      }
    }
  });
  socket.addEventListener("close", (event) => {
    // 4403: not allowed to follow this call; otherwise the connection dropped: try again.
    if (event.code !== 4403 && root.dataset.status !== "done") setTimeout(listen, 2000);
  });
}

listen();
