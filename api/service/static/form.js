// The new-run form, generated from the RunConfig JSON schema the service publishes (/openapi.json).
// Presets fill the training fields (/presets); the API's 422 problem details are shown beside each field.

import { ApiError, getJSON, schema, send } from "./api.js";
import { h } from "./dom.js";

function resolve(node, root) {
  while (node && node.$ref) node = root.components.schemas[node.$ref.split("/").pop()];
  return node || {};
}

/** The schema without its `null` branch (an optional field), and whether null was allowed. */
function nonNull(node, root) {
  node = resolve(node, root);
  if (node.anyOf) {
    const branches = node.anyOf.map((b) => resolve(b, root)).filter((b) => b.type !== "null");
    if (branches.length === 1) return { ...node, ...branches[0], anyOf: undefined, optional: true };
  }
  return node;
}

function kindOf(node, root) {
  node = nonNull(node, root);
  if (node.enum) return "choice";
  if (node.type === "boolean") return "boolean";
  if (node.type === "integer" || node.type === "number") return "number";
  if (node.type === "string") return "text";
  if (node.type === "array" && ["number", "integer"].includes(resolve(node.items, root).type)) return "numbers";
  // An object whose every field has a default is a group of fields; one with a required field
  // (the task: its training patterns) is one JSON field, empty for its default.
  if (node.type === "object" && node.properties && !node.required?.length) return "group";
  return "json";
}

function range(node) {
  const parts = [];
  if (node.minimum !== undefined) parts.push(`≥ ${node.minimum}`);
  if (node.exclusiveMinimum !== undefined) parts.push(`> ${node.exclusiveMinimum}`);
  if (node.maximum !== undefined) parts.push(`≤ ${node.maximum}`);
  if (node.exclusiveMaximum !== undefined) parts.push(`< ${node.exclusiveMaximum}`);
  return parts.join(", ");
}

const id = (path) => `f-${path.replaceAll(".", "-")}`;

/** Build the inputs of one schema node under `path`; fields[path] = {input, kind, error}. */
function build(path, node, root, fields, choices) {
  const kind = kindOf(node, root);
  node = nonNull(node, root);
  const name = path.split(".").pop();
  const error = h("span", { className: "field-error", id: `${id(path)}-error`, role: "alert" });
  if (kind === "group") {
    const fieldset = h("fieldset", { "data-field": path }, h("legend", {}, node.title || name));
    if (node.description) fieldset.append(h("p", { className: "hint" }, node.description.split("\n")[0]));
    fieldset.append(error);
    const grid = h("div", { className: "field-grid" });
    for (const [key, child] of Object.entries(node.properties)) grid.append(build(`${path}.${key}`, child, root, fields, choices));
    fieldset.append(grid);
    fields[path] = { kind, error, element: fieldset };
    return fieldset;
  }
  const hintText = [node.description, range(node)].filter(Boolean).join(" ");
  const hint = h("span", { className: "hint", id: `${id(path)}-hint` }, hintText);
  const common = { id: id(path), name: path, "aria-describedby": `${id(path)}-hint ${id(path)}-error` };
  let input;
  if (kind === "choice" || choices[path]) {
    input = h("select", common, (choices[path] || node.enum).map((v) => h("option", { value: v }, v)));
  } else if (kind === "boolean") {
    input = h("input", { ...common, type: "checkbox" });
  } else if (kind === "number") {
    input = h("input", { ...common, type: "number", step: node.type === "integer" ? "1" : "any", inputmode: "decimal" });
  } else if (kind === "numbers") {
    input = h("input", { ...common, type: "text", placeholder: node.optional ? "none (comma-separated numbers)" : "comma-separated numbers" });
  } else if (kind === "json") {
    input = h("textarea", { ...common, rows: 3, spellcheck: "false", placeholder: "JSON; empty = the default" });
  } else {
    input = h("input", { ...common, type: "text" });
  }
  fields[path] = { kind, input, error, node };
  const wrapper = h("div", { className: `field field-${kind}`, "data-field": path },
    h("label", { for: id(path) }, `${node.title || name} `, h("code", {}, name)), input, error, hint);
  return wrapper;
}

function setValue(field, value) {
  const { kind, input } = field;
  if (kind === "boolean") input.checked = Boolean(value);
  else if (kind === "numbers") input.value = Array.isArray(value) ? value.join(", ") : "";
  else if (kind === "json") input.value = value === undefined || value === null ? "" : JSON.stringify(value);
  else input.value = value === undefined || value === null ? "" : String(value);
}

class ClientError extends Error {}

/** The field's value for the request body; undefined leaves it out (the default applies). */
function readValue(field) {
  const { kind, input } = field;
  if (kind === "boolean") return input.checked;
  if (kind === "number") {
    if (input.validity.badInput) throw new ClientError("not a number");
    if (input.value === "") return undefined;
    return Number(input.value);
  }
  const text = input.value.trim();
  if (text === "") return undefined;
  if (kind === "numbers") return text.split(/[\s,]+/).filter(Boolean).map((t) => (Number.isNaN(Number(t)) ? t : Number(t)));
  if (kind === "json") {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new ClientError(`not valid JSON (${e.message})`);
    }
  }
  return text;
}

function put(body, path, value) {
  const keys = path.split(".");
  let node = body;
  for (const key of keys.slice(0, -1)) node = node[key] ??= {};
  node[keys.at(-1)] = value;
}

export async function renderNewRun(main) {
  const root = await schema();
  const [presets, backends] = await Promise.all([getJSON("/presets"), getJSON("/backends")]);
  // The body of POST /runs: the RunConfig fields, then what to do when the instrument is busy.
  const runConfig = root.components.schemas.RunRequest ?? root.components.schemas.RunConfig;
  const fields = {};
  const choices = { "backend.name": Object.keys(backends.backends) };
  const status = h("p", { role: "status", "aria-live": "polite", id: "form-status" });
  const formError = h("div", { className: "form-error", role: "alert", id: "form-error" });
  const form = h("form", { id: "new-run", novalidate: true });
  form.append(h("p", { className: "hint" }, runConfig.description.split("\n")[0]));
  for (const [key, node] of Object.entries(runConfig.properties)) form.append(build(key, node, root, fields, choices));
  const submit = h("button", { type: "submit" }, "Start run");
  form.append(formError, h("div", { className: "buttons" }, submit), status);
  main.append(h("h1", {}, "New run"), form);

  const fillPreset = (name) => {
    for (const [key, value] of Object.entries(presets.presets[name] || {})) {
      if (fields[`training.${key}`]) setValue(fields[`training.${key}`], value);
    }
  };
  setValue(fields.preset, presets.default);
  fillPreset(presets.default);
  setValue(fields["backend.name"], "emulator");
  setValue(fields["backend.params"], { seed: 0 });
  fields.preset.input.addEventListener("change", () => {
    fillPreset(fields.preset.input.value);
    status.textContent = `Training fields filled from the preset "${fields.preset.input.value}".`;
  });

  const clearErrors = () => {
    formError.textContent = "";
    for (const f of Object.values(fields)) {
      f.error.textContent = "";
      f.input?.removeAttribute("aria-invalid");
    }
  };
  const showError = (path, message) => {
    let at = path;
    while (at && !fields[at]) at = at.includes(".") ? at.slice(0, at.lastIndexOf(".")) : "";
    const field = fields[at];
    if (!field) {
      formError.append(h("p", {}, `${path}: ${message}`));
      return null;
    }
    field.error.textContent = at === path ? message : `${path}: ${message}`;
    field.input?.setAttribute("aria-invalid", "true");
    return field.input || field.element;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const body = {};
    let first = null;
    for (const [path, field] of Object.entries(fields)) {
      if (field.kind === "group") continue;
      try {
        const value = readValue(field);
        if (value !== undefined) put(body, path, value);
      } catch (e) {
        if (!(e instanceof ClientError)) throw e;
        first ??= showError(path, e.message);
      }
    }
    if (first) {
      first.focus();
      status.textContent = "Not sent: correct the marked fields.";
      return;
    }
    submit.disabled = true;
    status.textContent = "Starting…";
    try {
      const run = await send("POST", "/runs", body);
      location.hash = `#/runs/${run.id}`;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      status.textContent = `Not started: ${e.message}`;
      for (const err of e.problem.errors || []) first ??= showError(err.field, err.message);
      if (!e.problem.errors) formError.append(h("p", {}, e.message));
      first?.focus();
    } finally {
      submit.disabled = false;
    }
  });
  return null;
}
