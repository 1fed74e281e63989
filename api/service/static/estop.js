// The emergency-stop latch, shown in the header bar of every page.

import { getJSON } from "./api.js";
import { when } from "./dom.js";

/** Read the latch and show it in the header; returns it (null when the service is unreachable). */
export async function refreshEstop() {
  const state = document.getElementById("estop-state");
  try {
    const estop = await getJSON("/emergency-stop");
    document.body.classList.toggle("latched", estop.latched);
    state.textContent = estop.latched ? `EMERGENCY STOP LATCHED since ${when(estop.since)}: ${estop.reason || ""}` : "";
    return estop;
  } catch (e) {
    state.textContent = `service unreachable (${e.message})`;
    return null;
  }
}
