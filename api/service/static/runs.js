// The runs page: every run with its status, outcome, instrument, rule, start and epochs; filters; live status.

import { getJSON, schema } from "./api.js";
import { h, when } from "./dom.js";

const POLL_MS = 1500;

function instrumentOf(run) {
  return run.instrument || `${run.backend} (emulated)`;
}

export async function renderRuns(main) {
  const statuses = (await schema()).components.schemas.RunStatus.enum;
  const statusFilter = h("select", { id: "filter-status" }, h("option", { value: "" }, "any"), statuses.map((s) => h("option", { value: s }, s)));
  const instrumentFilter = h("select", { id: "filter-instrument" }, h("option", { value: "" }, "any"));
  const body = h("tbody");
  const count = h("p", { role: "status", "aria-live": "polite", className: "muted" });
  main.append(
    h("h1", {}, "Runs"),
    h("p", {}, h("a", { href: "#/new", className: "button" }, "Start a new run")),
    h("div", { className: "filters" },
      h("label", { for: "filter-status" }, "Status ", statusFilter),
      h("label", { for: "filter-instrument" }, "Instrument ", instrumentFilter)),
    count,
    h("div", { className: "table-wrap" },
      h("table", { id: "runs-table" },
        h("caption", { className: "visually-hidden" }, "Runs, newest first"),
        h("thead", {}, h("tr", {}, ["Run", "Status", "Outcome", "Instrument", "Rule", "Preset", "Started", "Epochs trained"].map((c) => h("th", { scope: "col" }, c)))),
        body)),
  );

  const known = new Set();
  let asked = 0; // A reply to an older request (another filter) must not replace a newer one.
  async function refresh() {
    const mine = ++asked;
    const query = statusFilter.value ? `&status=${encodeURIComponent(statusFilter.value)}` : "";
    const page = await getJSON(`/runs?limit=200${query}`);
    if (mine !== asked) return;
    for (const run of page.items) {
      const name = instrumentOf(run);
      if (!known.has(name)) {
        known.add(name);
        instrumentFilter.append(h("option", { value: name }, name));
      }
    }
    const rows = page.items.filter((r) => !instrumentFilter.value || instrumentOf(r) === instrumentFilter.value);
    body.replaceChildren(
      ...rows.map((run) =>
        h("tr", { "data-run": run.id, "data-status": run.status },
          h("td", {}, h("a", { href: `#/runs/${run.id}` }, run.id)),
          h("td", {}, h("span", { className: `badge status-${run.status}` }, run.status)),
          h("td", {}, run.outcome || "–"),
          h("td", {}, instrumentOf(run)),
          h("td", {}, run.config?.training?.rule ?? "–"),
          h("td", {}, run.config?.preset ?? "–"),
          h("td", {}, when(run.started_at || run.created_at)),
          h("td", { className: "num" }, run.epochs))),
    );
    count.textContent = `${rows.length} shown of ${page.total} run${page.total === 1 ? "" : "s"}`;
  }
  statusFilter.addEventListener("change", refresh);
  instrumentFilter.addEventListener("change", refresh);
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), POLL_MS);
  return () => clearInterval(timer);
}
