// Herald admin: the operator's timezone for the server, live progress bars (mailings, imports), the audience preview. No libraries.
"use strict";

(function rememberTimezone() {
  // The server shows and reads times in this zone; it learns it from this cookie.
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const current = document.cookie.split("; ").find((c) => c.startsWith("herald_tz="));
  // IANA names (Europe/Moscow, America/Argentina/Buenos_Aires) are valid cookie values as they are.
  if (!current || current.split("=")[1] !== zone) {
    document.cookie = "herald_tz=" + zone + "; path=/admin/; max-age=31536000; samesite=lax";
    // The first page was rendered in UTC; show it again in the operator's zone, unless a form is half filled.
    if (!current && !document.querySelector("form.form")) location.reload();
  }
})();

function pollProgress(box) {
  const bar = box.querySelector("progress");
  const text = box.querySelector(".progress-text");
  async function tick() {
    try {
      const response = await fetch(box.dataset.progress, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const p = await response.json();
      bar.value = p.percent;
      bar.textContent = p.percent + "%";
      text.textContent = p.percent + "% (" + p.done + " of " + p.total + ")";
      if (p.state === "ended" && p.percent === 100) return;
      // An import's page shows its counts and refused lines once it has finished: load them.
      if ("reloadWhenDone" in box.dataset && p.state !== "running") {
        location.reload();
        return;
      }
    } catch (e) {
      // A blip: try again at the next tick.
    }
    setTimeout(tick, 1000);
  }
  setTimeout(tick, 1000);
}

document.querySelectorAll("[data-progress]").forEach(pollProgress);

document.querySelectorAll("[data-audience]").forEach((button) => {
  const out = button.parentElement.querySelector(".audience");
  button.addEventListener("click", async () => {
    const form = button.form;
    const query = new URLSearchParams({
      "filter.operator_codes": form.elements["filter.operator_codes"].value,
      "filter.tags": form.elements["filter.tags"].value,
    });
    const response = await fetch(button.dataset.audience + "?" + query);
    const body = await response.json();
    out.replaceChildren();
    if (!response.ok) {
      const p = document.createElement("p");
      p.className = "error";
      p.textContent = Object.entries(body.errors).map(([k, v]) => k + ": " + v.join(" ")).join("; ");
      out.append(p);
      return;
    }
    const summary = document.createElement("p");
    summary.textContent = body.total + (body.total === 1 ? " client matches" : " clients match") + " this filter now.";
    out.append(summary);
    if (body.total) {
      const table = document.createElement("table");
      table.innerHTML = "<thead><tr><th scope='col'>Timezone</th><th scope='col'>Clients</th></tr></thead>";
      const tbody = table.createTBody();
      for (const [zone, n] of Object.entries(body.by_timezone)) {
        const row = tbody.insertRow();
        row.insertCell().textContent = zone;
        row.insertCell().textContent = n;
      }
      out.append(table);
    }
  });
});
