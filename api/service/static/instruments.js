// The instruments page: what this machine can see, which run holds each instrument, the
// emergency-stop latch (latch with a reason, clear), and the queue where the service has one.

import { ApiError, getJSON, hasPath, send } from "./api.js";
import { h, when } from "./dom.js";
import { refreshEstop } from "./estop.js";

const POLL_MS = 2000;
const HOLDING = ["running", "paused", "suspended", "stopping"]; // A queued run holds nothing yet.

export async function renderInstruments(main) {
  const latchState = h("p", { id: "latch-state", role: "status", "aria-live": "polite" });
  const reason = h("input", { id: "estop-reason", type: "text", maxlength: 500, value: "emergency stop" });
  const latch = h("button", { type: "button", id: "latch-estop", className: "danger" }, "Latch emergency stop");
  const clear = h("button", { type: "button", id: "clear-estop" }, "Clear the latch");
  const message = h("p", { className: "error", role: "alert", id: "instruments-message" });
  const held = h("tbody");
  const found = h("tbody");
  const notes = h("ul", { className: "muted" });
  const queue = h("div", { id: "queue" });

  main.append(
    h("h1", {}, "Instruments"),
    h("section", { "aria-labelledby": "estop-title" }, h("h2", { id: "estop-title" }, "Emergency stop"),
      latchState,
      h("div", { className: "field" }, h("label", { for: "estop-reason" }, "Reason"), reason),
      h("div", { className: "buttons" }, latch, clear), message),
    h("section", { "aria-labelledby": "held-title" }, h("h2", { id: "held-title" }, "Instruments in use"),
      h("div", { className: "table-wrap" }, h("table", { id: "held-table" },
        h("thead", {}, h("tr", {}, ["Instrument", "Held by run", "Status", "Since"].map((c) => h("th", { scope: "col" }, c)))), held))),
    h("section", { "aria-labelledby": "found-title" }, h("h2", { id: "found-title" }, "Instruments this machine can see"),
      h("div", { className: "table-wrap" }, h("table", { id: "found-table" },
        h("thead", {}, h("tr", {}, ["Backend", "Address", "Description", "Held by"].map((c) => h("th", { scope: "col" }, c)))), found)),
      notes),
    queue,
  );

  const act = (method, body) => async () => {
    message.textContent = "";
    try {
      await send(method, "/emergency-stop", body?.());
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      message.textContent = `Refused: ${e.message}`;
    }
    await refresh();
  };
  latch.addEventListener("click", act("POST", () => ({ reason: reason.value || "emergency stop" })));
  clear.addEventListener("click", act("DELETE"));

  const showQueue = await hasPath("/queue");

  const queueAct = (path, body) => async () => {
    message.textContent = "";
    try {
      await send("POST", path, body);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      message.textContent = `Refused: ${e.message}`;
    }
    await refresh();
  };

  /** Each instrument's queue: started or stopped (and why), its waiting runs in order, controls. */
  function queueView(view) {
    const out = [h("h2", { id: "queue-title" }, "Queues")];
    if (!view.queues.length) out.push(h("p", {}, "No queue: no run waits for an instrument."));
    for (const q of view.queues) {
      const started = q.state === "started";
      out.push(h("section", { className: "queue", "data-queue": q.name, "aria-label": `queue of ${q.name}` },
        h("h3", {}, `${q.name}: `, h("span", { className: `badge queue-${q.state}` }, q.state), q.reason ? ` (${q.reason})` : ""),
        h("div", { className: "buttons" },
          h("button", { type: "button", className: "queue-start", disabled: started, onclick: queueAct("/queue/start", { instrument: q.name }) }, "Start queue"),
          h("button", { type: "button", className: "queue-stop", disabled: !started, onclick: queueAct("/queue/stop", { instrument: q.name }) }, "Stop queue")),
        q.items.length
          ? h("ol", {}, q.items.map((run, i) => h("li", {},
            h("a", { href: `#/runs/${run.id}` }, run.id), ` ${run.config?.training?.rule ?? ""} `,
            i > 0 ? h("button", { type: "button", className: "queue-up", onclick: queueAct("/queue/move", { run_id: run.id, position: i }) }, "Move up") : "")))
          : h("p", { className: "muted" }, "No run waiting.")));
    }
    return out;
  }
  async function refresh() {
    const estop = await refreshEstop();
    if (estop) {
      latchState.textContent = estop.latched ? `LATCHED since ${when(estop.since)}: ${estop.reason}. No run can start until it is cleared.` : "Not latched: runs may start.";
      latchState.className = estop.latched ? "latched-text" : "";
      clear.disabled = !estop.latched;
    }
    const page = await getJSON(`/runs?limit=500&${HOLDING.map((s) => `status=${s}`).join("&")}`);
    const holder = new Map(page.items.filter((r) => r.instrument).map((r) => [r.instrument, r]));
    const emulated = page.items.filter((r) => !r.instrument);
    held.replaceChildren(
      ...page.items.map((r) => h("tr", {},
        h("td", {}, r.instrument || `emulated crossbar (${r.backend})`),
        h("td", {}, h("a", { href: `#/runs/${r.id}` }, r.id)), h("td", {}, r.status), h("td", {}, when(r.started_at || r.created_at)))),
    );
    if (!page.items.length) held.append(h("tr", {}, h("td", { colspan: 4 }, "No instrument is in use.")));
    if (showQueue) queue.replaceChildren(...queueView(await getJSON("/queue")));
    return { holder, emulated };
  }

  const { holder } = await refresh();
  const view = await getJSON("/instruments");
  found.replaceChildren(...view.found.map((i) => h("tr", {},
    h("td", {}, i.backend), h("td", {}, i.address), h("td", {}, i.identity || i.description || "–"),
    h("td", {}, holder.has(i.address) ? h("a", { href: `#/runs/${holder.get(i.address).id}` }, holder.get(i.address).id) : "free"))));
  if (!view.found.length) found.append(h("tr", {}, h("td", { colspan: 4 }, "None found (VISA resources and serial ports are listed; nothing is sent to them).")));
  notes.replaceChildren(...view.notes.map((n) => h("li", {}, n)));
  const timer = setInterval(() => refresh().catch(() => {}), POLL_MS);
  return () => clearInterval(timer);
}
