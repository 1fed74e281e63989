// The page's router (#/runs, #/new, #/runs/<id>, #/instruments) and the emergency-stop bar.

import { ApiError, send } from "./api.js";
import { refreshEstop } from "./estop.js";
import { renderInstruments } from "./instruments.js";
import { renderNewRun } from "./form.js";
import { renderRun } from "./run.js";
import { renderRuns } from "./runs.js";

const ROUTES = [
  [/^#?\/?$/, "runs", renderRuns],
  [/^#\/runs$/, "runs", renderRuns],
  [/^#\/new$/, "new", renderNewRun],
  [/^#\/runs\/([A-Za-z0-9_.-]+)$/, "runs", renderRun],
  [/^#\/instruments$/, "instruments", renderInstruments],
];

let leave = null; // The shown page's clean-up (closes its stream, stops its polling).

async function route() {
  if (leave) leave();
  leave = null;
  const main = document.getElementById("main");
  main.replaceChildren();
  const hash = location.hash || "#/runs";
  for (const [pattern, page, render] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    for (const a of document.querySelectorAll("nav a[data-page]")) {
      if (a.dataset.page === page) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    try {
      leave = (await render(main, ...match.slice(1))) || null;
    } catch (e) {
      main.append(Object.assign(document.createElement("p"), { className: "error", textContent: `Could not show this page: ${e.message}` }));
    }
    return;
  }
  main.append(Object.assign(document.createElement("p"), { textContent: `No page ${hash}.` }));
}

async function emergencyStop() {
  try {
    await send("POST", "/emergency-stop", { reason: "emergency stop from the web page" });
  } catch (e) {
    if (e instanceof ApiError) alert(`Emergency stop NOT sent: ${e.message}`);
    else throw e;
  }
  await refreshEstop();
  window.dispatchEvent(new Event("estop-changed"));
}

document.getElementById("estop-button").addEventListener("click", emergencyStop);
window.addEventListener("hashchange", route);
refreshEstop();
setInterval(refreshEstop, 2000);
route();
