// A campaign's page: its progress part is fetched again every few seconds while it sends, and now
// and then after (customers still read, reply and call through its button once it is sent).
const SENDING_MS = 2000;
const AFTER_MS = 10000;

function interval(part) {
  if (!part || part.dataset.status === "draft") return null;
  return ["sending", "paused"].includes(part.dataset.status) ? SENDING_MS : AFTER_MS;
}

function refresh() {
  const part = document.getElementById("campaign-progress");
  fetch(part.dataset.url, { headers: { Accept: "text/html" }, credentials: "same-origin" })
    .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
    .then((html) => {
      const next = new DOMParser().parseFromString(html, "text/html").getElementById("campaign-progress");
      if (next) part.replaceWith(next);
    })
    .catch(() => {})
    .finally(() => {
      const wait = interval(document.getElementById("campaign-progress"));
      if (wait) setTimeout(refresh, wait);
    });
}

document.addEventListener("DOMContentLoaded", () => {
  const wait = interval(document.getElementById("campaign-progress"));
  if (wait) setTimeout(refresh, wait);
});
