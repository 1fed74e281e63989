// A run's page, live over its SSE stream (resumed with Last-Event-ID after a drop); a finished run
// shows the same page, its events replayed from the store.

import { ApiError, getJSON, hasPath, send } from "./api.js";
import { COLORS, DASHES, MARKERS, chart, extent, legend } from "./charts.js";
import { eng, h, when } from "./dom.js";

const US = 1e6; // Conductances are recorded in S and drawn in µS, as in the PNGs.
const FINISHED = new Set(["stopped", "converged", "not_converged", "failed", "interrupted"]);
/** Names of the status-change events (the API's "status" and the changes of their own: runs/store.py CHANGES). */
const STATUS_EVENTS = ["status", "queued", "paused", "resumed", "suspended", "reconnected"];
const PULSE_ROWS = 100;
const PULSE_REFRESH_MS = 2000;

/** Label and colour of crossbar column k: G+ / G- of its neuron (columns 2i, 2i+1), or unused. */
function columnRole(k, nOut) {
  const neuron = Math.floor(k / 2);
  if (neuron >= nOut) return ["unused", COLORS.unused];
  return k % 2 === 0 ? [`G+ n${neuron}`, COLORS.plus] : [`G- n${neuron}`, COLORS.minus];
}

/** What names the run on every figure: id, device or trace, seed, rule, preset, beta, date. */
function runName(run, result) {
  const c = run.config;
  const params = c.backend?.params || {};
  const device = run.instrument
    ? `instrument ${run.instrument}${run.identity ? ` (${run.identity})` : ""}`
    : params.trace ? `trace ${params.trace}` : params.device ? "parametric device model" : `${run.backend}, built-in device`;
  const seed = run.instrument ? "" : ` · seed ${params.seed ?? "0 (default)"}`;
  const beta = result?.beta ?? c.training.beta;
  const betaText = `${Number(beta).toExponential(3)} 1/A${c.training.gain === "calibrated" ? (result ? " (calibrated)" : " (start; calibrated before training)") : ""}`;
  return `run ${run.id} · ${device}${seed} · rule ${c.training.rule} · preset ${c.preset} · β ${betaText} · ${when(run.created_at)}`;
}

function section(title, id, ...children) {
  return h("section", { "aria-labelledby": `${id}-title`, id }, h("h2", { id: `${id}-title` }, title), ...children);
}

export async function renderRun(main, runId) {
  let run = await getJSON(`/runs/${runId}`);
  let result = null;
  const records = new Map();
  const epochsOf = () => [...records.values()].sort((a, b) => a.epoch - b.epoch);

  const badge = h("span", { className: "badge", id: "run-status" });
  const live = h("span", { id: "live", className: "muted", role: "status", "aria-live": "polite" });
  const name = h("p", { className: "run-name", id: "run-name" });
  const summary = h("dl", { className: "summary", id: "summary" });
  const curve = h("div", { id: "curve" });
  const stopButton = h("button", { type: "button", id: "stop-run", className: "warn" }, "Stop run");
  const controls = h("div", { className: "buttons" }, stopButton);
  const grid = h("div", { className: "small-multiples", id: "conductance-grid" });
  const gridLegend = h("div");
  const weights = h("div", { id: "weights-chart" });
  const outputs = h("div", { className: "panels", id: "outputs-grid" });
  const outputsLegend = h("div");
  const errors = h("div", { className: "pair", id: "error-charts" });
  const counts = h("div", { id: "pulse-chart" });
  const pulseBody = h("tbody");
  const pulseNote = h("p", { className: "muted" });
  const downloads = h("ul", { id: "downloads", className: "downloads" });
  const message = h("p", { className: "error", role: "alert", id: "run-message" });

  let pauseButtons = null; // Shown where the service can pause a run (POST /runs/{id}/pause).
  if (await hasPath("/runs/{run_id}/pause")) {
    const act = (what, body) => async () => {
      try {
        adopt(await send("POST", `/runs/${runId}/${what}`, body));
      } catch (e) {
        if (e instanceof ApiError) message.textContent = `${what} refused: ${e.message}`;
      }
    };
    const pause = h("button", { type: "button", id: "pause-run", onclick: act("pause", { when: "after_epoch" }) }, "Pause after this epoch");
    const resume = h("button", { type: "button", id: "resume-run", onclick: act("resume") }, "Resume");
    controls.append(pause, resume);
    pauseButtons = { pause, resume };
  }

  main.append(
    h("h1", {}, `Run ${runId} `, badge),
    name,
    h("div", { className: "run-bar" }, controls, live),
    message,
    summary,
    section("Curve source and calibration", "curve-section", curve),
    section("Conductance of every device per epoch", "conductances", gridLegend, grid),
    section("Logic weights W = G+ − G−", "weights", weights),
    section("Each training pattern's outputs against its band", "outputs", outputsLegend, outputs),
    section("Error and misses per epoch", "errors", errors),
    section("Pulses and resets per epoch", "counts", counts),
    section("Pulse log", "pulses", pulseNote, h("div", { className: "table-wrap scroll-box", tabindex: 0, role: "region", "aria-label": "pulse log" }, h("table", { id: "pulse-table" },
      h("thead", {}, h("tr", {}, ["Epoch", "Sent", "Kind", "Row", "Col", "Amplitude", "Width"].map((c) => h("th", { scope: "col" }, c)))),
      pulseBody))),
    section("Downloads", "downloads-section", downloads),
  );

  stopButton.addEventListener("click", async () => {
    stopButton.disabled = true;
    try {
      adopt(await send("POST", `/runs/${runId}/stop`));
      message.textContent = "";
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      message.textContent = `Stop not sent: ${e.message}`;
      stopButton.disabled = false;
    }
  });

  let lastEvent = 0; // Id of the newest event the stream gave.
  /** Take a run record from a reply unless the stream has already told of something newer
   *  (a reply to "pause" can arrive after the stream's "paused"). */
  function adopt(view) {
    run = view.last_event_id >= lastEvent ? view : { ...view, status: run.status, outcome: run.outcome, error: run.error };
    showRun();
  }

  function showRun() {
    badge.textContent = run.status;
    badge.className = `badge status-${run.status}`;
    name.textContent = runName(run, result);
    const t = run.config.training;
    const rows = [
      ["Status", run.status], ["Outcome", run.outcome || "–"], ["Backend", run.backend],
      ["Instrument", run.instrument || "emulated crossbar"], ["Rule", `${t.rule} (${t.update})`],
      ["Preset", run.config.preset], ["Bands", `class 1: f > ${t.f_plus}, class 0: f < ${t.f_minus}`],
      ["Epoch limit", t.max_epochs], ["Created", when(run.created_at)], ["Started", when(run.started_at)],
      ["Ended", when(run.ended_at)], ["Epochs trained", run.epochs], ["Pulses", run.pulses],
    ];
    if (run.error) rows.push(["Error", run.error]);
    summary.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
    stopButton.disabled = FINISHED.has(run.status);
    if (pauseButtons) {
      pauseButtons.pause.disabled = run.status !== "running";
      // A pause asked for and not yet taken can be withdrawn too (the API's resume does that).
      pauseButtons.resume.disabled = run.status !== "paused" && !(run.pause_request && !FINISHED.has(run.status));
    }
    const c = t.device_curve_siemens;
    const sources = {
      auto: "the instrument's newest calibration where the run store keeps one, else learned in situ from read-back",
      learned: "learned in situ from read-back (a calibration ignored)",
      oracle: "the emulator's own exact curve (no real instrument has one: an emulator-only figure)",
      none: "none: the planned rule makes Manhattan steps and the gain stays as given",
    };
    const points = Array.isArray(c) ? (Array.isArray(c[0]) ? "one per device" : `${c.length} points`) : "";
    const items = [
      h("li", {}, `Gain: ${t.gain === "calibrated" ? `calibrated before training to ${t.gain_fraction} of the largest reachable margin` : `fixed, β = ${t.beta} 1/A`}.`),
      h("li", {}, c ? `Device curve: given in the run's config (${points})${t.device_curve_label ? `: ${t.device_curve_label}` : ""}.`
        : `Device curve (curve_source ${t.curve_source ?? "auto"}): ${sources[t.curve_source ?? "auto"] ?? t.curve_source}.`),
    ];
    if (result) {
      items.push(h("li", {}, `β used: ${result.beta === null ? "–" : Number(result.beta).toExponential(3)} 1/A.`));
      if (result.feasibility) items.push(h("li", {}, `Feasibility: ${result.feasibility}`));
      if (result.diagnosis) items.push(h("li", {}, `Diagnosis: ${result.diagnosis}${result.diagnosis_detail ? ` — ${result.diagnosis_detail}` : ""}`));
      for (const note of result.notes || []) items.push(h("li", {}, `Note: ${note}`));
    } else items.push(h("li", { className: "muted" }, "The calibrated β, feasibility and notes are shown when the run ends."));
    curve.replaceChildren(h("ul", {}, items));
  }

  let drawQueued = false;
  function queueDraw() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => {
      drawQueued = false;
      draw();
    });
  }

  function draw() {
    const recs = epochsOf();
    // Epochs trained drawn: the last record's number (epoch 0 is the read before training), as run.epochs counts.
    live.dataset.epochs = String(recs.length ? recs.at(-1).epoch : 0);
    if (!recs.length) {
      grid.replaceChildren(h("p", { className: "muted" }, "No epoch recorded yet."));
      return;
    }
    const epochs = recs.map((r) => r.epoch);
    const x = [epochs[0] - 0.5, Math.max(epochs.at(-1), epochs[0] + 1) + 0.5];
    const nOut = recs[0].weights_siemens.length;
    const nIn = recs[0].weights_siemens[0].length;
    const nRows = recs[0].conductances_siemens.length;
    const nCols = recs[0].conductances_siemens[0].length;
    const last = recs.at(-1);
    const endMark = FINISHED.has(run.status) && run.outcome === "converged" ? [{ x: last.epoch, color: COLORS.converged, dash: "5 3" }] : [];

    // Conductances: one panel per device, a shared y-axis, resets marked where they happened.
    const allG = recs.flatMap((r) => r.conductances_siemens.flat().map((g) => g * US));
    const yG = extent(allG);
    const panels = [];
    for (let j = 0; j < nRows; j++) {
      for (let k = 0; k < nCols; k++) {
        const [role, color] = columnRole(k, nOut);
        const resets = recs.filter((r) => (r.reset_devices || []).some(([rr, cc]) => rr === j && cc === k)).map((r) => r.epoch);
        panels.push(chart({
          width: 240, height: 140, compact: true, x, y: yG, titleColor: color,
          title: `in ${j}, col ${k}: ${role}${resets.length ? `, ${resets.length} reset${resets.length > 1 ? "s" : ""}` : ""}`,
          yLabel: k === 0 ? "G (µS)" : undefined,
          describe: `conductance of the device at input ${j}, column ${k} (${role}) per epoch, last ${(last.conductances_siemens[j][k] * US).toFixed(3)} µS`,
          series: [{ points: recs.map((r) => [r.epoch, r.conductances_siemens[j][k] * US]), color }],
          vlines: [...resets.map((e) => ({ x: e + 0.5, color: COLORS.reset, dash: "2 2", marker: true })), ...endMark],
        }));
      }
    }
    grid.replaceChildren(...panels);
    const gridEntries = [{ label: "G+ (column 2i, adds to W_ij)", color: COLORS.plus }, { label: "G− (column 2i+1, subtracts from W_ij)", color: COLORS.minus }];
    if (2 * nOut < nCols) gridEntries.push({ label: "unused column", color: COLORS.unused });
    if (recs.some((r) => (r.reset_devices || []).length)) gridEntries.push({ label: "reset + re-programming in that update", color: COLORS.reset, dash: "2 2", marker: "triangle" });
    gridLegend.replaceChildren(legend(gridEntries), h("p", { className: "muted" }, `µS, shared y-axis; epoch on x (0 to ${last.epoch}).`));

    // Logic weights: colour = input, dash and marker = neuron, so coinciding lines stay apart.
    const wSeries = [];
    for (let i = 0; i < nOut; i++) {
      for (let j = 0; j < nIn; j++) {
        wSeries.push({
          label: `W_${i}${j}`, color: COLORS.inputs[j % COLORS.inputs.length], dash: DASHES[i % DASHES.length],
          marker: MARKERS[i % MARKERS.length], points: recs.map((r) => [r.epoch, r.weights_siemens[i][j] * US]),
        });
      }
    }
    weights.replaceChildren(
      chart({ width: 760, height: 260, x, y: extent(wSeries.flatMap((s) => s.points.map((p) => p[1])).concat([0])), xLabel: "epoch", yLabel: "W = G+ − G− (µS)", series: wSeries, hlines: [{ y: 0 }], vlines: endMark, describe: "logic weights per epoch" }),
      legend(wSeries.map((s) => ({ label: `${s.label} (neuron ${s.label[2]}, input ${s.label[3]})`, color: s.color, dash: s.dash, marker: s.marker }))),
    );

    // Outputs per training pattern against the band each neuron must reach.
    const t = run.config.training;
    const train = run.config.task?.train || [];
    const outPanels = train.map((example, p) => {
      const series = [];
      const bands = [];
      for (let i = 0; i < nOut; i++) {
        const color = COLORS.neurons[i % COLORS.neurons.length];
        const one = example.target[i] === "1";
        bands.push(one ? { lo: t.f_plus, hi: 1, color } : { lo: -1, hi: t.f_minus, color });
        series.push({ color, marker: MARKERS[i % MARKERS.length], points: recs.map((r) => [r.epoch, r.activations[p]?.[i]]) });
      }
      const inBand = last.in_band?.[p]?.every(Boolean);
      return chart({
        width: 300, height: 170, compact: true, x, y: [-1.05, 1.05], bands, series, hlines: [{ y: 0 }], vlines: endMark,
        title: `pattern ${example.pattern} → target ${example.target}${inBand ? " ✓" : ""}`, yLabel: "f = tanh(βI)",
        describe: `outputs of pattern ${example.pattern} (target ${example.target}) per epoch`,
      });
    });
    outputs.replaceChildren(...outPanels);
    const outEntries = [];
    for (let i = 0; i < nOut; i++) {
      const color = COLORS.neurons[i % COLORS.neurons.length];
      outEntries.push({ label: `neuron ${i} output f_${i}`, color, marker: MARKERS[i % MARKERS.length] }, { label: `neuron ${i} target band`, color, patch: true });
    }
    if (endMark.length) outEntries.push({ label: "converged", color: COLORS.converged, dash: "5 3" });
    outputsLegend.replaceChildren(legend(outEntries), h("p", { className: "muted" }, `bands: class 1 f > ${t.f_plus}, class 0 f < ${t.f_minus}; output unitless.`));

    // Error and misses; pulses and resets.
    const errorPoints = recs.map((r) => [r.epoch, r.error]);
    const missPoints = recs.map((r) => [r.epoch, r.misses]);
    errors.replaceChildren(
      chart({ width: 380, height: 200, x, y: [0, Math.max(1e-3, ...errorPoints.map((p) => p[1])) * 1.1], title: "error ½·mean((t − f)²)", xLabel: "epoch", yLabel: "error (unitless)", series: [{ points: errorPoints, color: COLORS.plus }], vlines: endMark, describe: `error per epoch, last ${last.error.toFixed(4)}` }),
      chart({ width: 380, height: 200, x, y: [0, Math.max(1, ...missPoints.map((p) => p[1])) * 1.15], title: "misses (pattern-neuron pairs out of band)", xLabel: "epoch", yLabel: "misses (count)", series: [{ points: missPoints, color: COLORS.minus, step: true, marker: "square" }], vlines: endMark, describe: `misses per epoch, last ${last.misses}` }),
    );
    const pulses = recs.map((r) => [r.epoch, r.pulses]);
    const resets = recs.map((r) => [r.epoch, r.resets || 0]);
    const totalP = pulses.reduce((a, p) => a + p[1], 0);
    const totalR = resets.reduce((a, p) => a + p[1], 0);
    counts.replaceChildren(
      chart({ width: 760, height: 200, x, y: [0, Math.max(1, ...pulses.map((p) => p[1]), ...resets.map((p) => p[1])) * 1.15], xLabel: "epoch", yLabel: "count", bars: [{ points: pulses, color: "#737373" }, { points: resets, color: COLORS.reset }], vlines: endMark, describe: `pulses and resets per epoch: ${totalP} pulses, ${totalR} resets in all` }),
      legend([{ label: `pulses (${totalP} in all)`, color: "#737373", patch: true }, { label: `resets (${totalR} in all)`, color: COLORS.reset, patch: true }]),
    );
  }

  let pulsesAt = 0;
  let pulseTimer = null;
  async function refreshPulses(force = false) {
    const now = Date.now();
    if (!force && now - pulsesAt < PULSE_REFRESH_MS) {
      pulseTimer ??= setTimeout(() => { pulseTimer = null; refreshPulses(true); }, PULSE_REFRESH_MS);
      return;
    }
    pulsesAt = now;
    const head = await getJSON(`/runs/${runId}/pulses?limit=1`);
    const offset = Math.max(0, head.total - PULSE_ROWS);
    const page = await getJSON(`/runs/${runId}/pulses?limit=${PULSE_ROWS}&offset=${offset}`);
    pulseNote.textContent = `${page.total} operations sent; the latest ${page.items.length} shown, newest first.`;
    pulseBody.replaceChildren(...page.items.reverse().map((p) => h("tr", {},
      h("td", { className: "num" }, p.epoch), h("td", {}, when(p.sent_at)), h("td", {}, p.kind),
      h("td", { className: "num" }, p.row), h("td", { className: "num" }, p.col),
      h("td", { className: "num" }, p.amplitude_v === null ? "–" : `${p.amplitude_v} V`),
      h("td", { className: "num" }, p.width_s === null ? "–" : eng(p.width_s, "s")))));
  }

  async function showDownloads() {
    const links = [h("li", {}, h("a", { href: `/runs/${runId}/history.csv`, download: `run-${runId}.csv` }, "History (CSV, every epoch)"))];
    if (FINISHED.has(run.status)) {
      links.push(h("li", {}, h("a", { href: `/runs/${runId}/result`, download: `run-${runId}.json` }, "Result (JSON, as hil train --json)")));
      const plots = await getJSON(`/runs/${runId}/plots`);
      for (const [plot, url] of Object.entries(plots.plots)) links.push(h("li", {}, h("a", { href: url, download: `run-${runId}-${plot}.png` }, `${plot}.png`)));
    } else links.push(h("li", { className: "muted" }, "The result JSON and the PNG figures come when the run ends."));
    downloads.replaceChildren(...links);
  }

  async function ended() {
    run = await getJSON(`/runs/${runId}`);
    try {
      result = await getJSON(`/runs/${runId}/result`);
    } catch {
      result = null;
    }
    live.textContent = `ended: ${run.status}${run.outcome ? ` (${run.outcome})` : ""}`;
    showRun();
    queueDraw();
    await Promise.all([showDownloads(), refreshPulses(true)]);
  }

  showRun();
  draw();
  await Promise.all([showDownloads(), refreshPulses(true)]);

  // The stream replays every event from the first, then follows; after a drop the browser
  // reconnects by itself with Last-Event-ID, so nothing is missed or doubled.
  const stream = new EventSource(`/runs/${runId}/events`);
  stream.addEventListener("open", () => { if (!FINISHED.has(run.status)) live.textContent = "live"; });
  stream.addEventListener("epoch", (event) => {
    const data = JSON.parse(event.data);
    records.set(data.record.epoch, data.record);
    lastEvent = Number(event.lastEventId);
    live.dataset.lastEvent = event.lastEventId;
    if (!FINISHED.has(run.status)) live.textContent = `live: epoch ${data.record.epoch}`;
    queueDraw();
    refreshPulses();
  });
  const onStatus = (event) => {
    const data = JSON.parse(event.data);
    lastEvent = Number(event.lastEventId);
    live.dataset.lastEvent = event.lastEventId;
    const resumed = event.type === "resumed" || FINISHED.has(data.status); // The pause request is gone.
    run = { ...run, status: data.status, outcome: data.outcome ?? run.outcome, error: data.error ?? run.error,
      pause_request: resumed ? null : run.pause_request };
    showRun();
    if (FINISHED.has(data.status)) {
      stream.close();
      ended();
    }
  };
  // Every status change: a "status" event, or one named by its change (the same data).
  for (const name of STATUS_EVENTS) stream.addEventListener(name, onStatus);
  stream.addEventListener("error", () => {
    if (stream.readyState === EventSource.CLOSED) live.textContent = "stream closed";
    else if (!FINISHED.has(run.status)) live.textContent = "connection lost: reconnecting (resumes after the last event)…";
  });
  const onEstop = async () => adopt(await getJSON(`/runs/${runId}`));
  window.addEventListener("estop-changed", onEstop);
  return () => {
    stream.close();
    clearTimeout(pulseTimer);
    window.removeEventListener("estop-changed", onEstop);
  };
}
