// A campaign's page: its progress part is fetched again every few seconds while it sends.
const REFRESH_MS = 2000;

function refresh() {
  const part = document.getElementById("campaign-progress");
  if (!part || !["sending", "paused"].includes(part.dataset.status)) return;
  fetch(part.dataset.url, { headers: { Accept: "text/html" }, credentials: "same-origin" })
    .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
    .then((html) => {
      const next = new DOMParser().parseFromString(html, "text/html").getElementById("campaign-progress");
      if (next) part.replaceWith(next);
    })
    .catch(() => {})
    .finally(() => setTimeout(refresh, REFRESH_MS));
}

document.addEventListener("DOMContentLoaded", () => setTimeout(refresh, REFRESH_MS));
