// Talking to the service: JSON reads, token-carrying writes, RFC 9457 problems, the OpenAPI document.

const TOKEN_KEY = "crossbar-hil.token";

/** A failed request: its HTTP status and problem details (detail, errors[{field, message}]). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function problemOf(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = { detail: `${response.status} ${response.statusText}` };
  }
  return new ApiError(response.status, body);
}

/** GET a JSON document of the service. */
export async function getJSON(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw await problemOf(response);
  return response.json();
}

let openapi = null;
/** The service's OpenAPI document (read once): the RunConfig schema and which endpoints exist. */
export async function schema() {
  openapi ??= await getJSON("/openapi.json");
  return openapi;
}

/** True when the service has this path (e.g. "/queue"), so controls for it can be shown. */
export async function hasPath(path) {
  return Object.hasOwn((await schema()).paths, path);
}

/** The token: from this tab's session storage, else asked for once in a dialog; null if refused. */
function askToken(again) {
  const kept = sessionStorage.getItem(TOKEN_KEY);
  if (kept && !again) return Promise.resolve(kept);
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  document.getElementById("token-note").textContent = again ? "The service refused that token: enter it again." : "";
  input.value = "";
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        const token = input.value.trim();
        input.value = "";
        if (dialog.returnValue !== "ok" || !token) return resolve(null);
        sessionStorage.setItem(TOKEN_KEY, token);
        resolve(token);
      },
      { once: true },
    );
    dialog.showModal();
    input.focus();
  });
}

/** A request that needs the token (start, stop, emergency stop, ...); asks again after a 401. */
export async function send(method, path, body) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const token = await askToken(attempt > 0);
    if (token === null) throw new ApiError(401, { detail: "no token given: nothing was sent" });
    const headers = { Accept: "application/json", Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      continue;
    }
    if (!response.ok) throw await problemOf(response);
    return response.status === 204 ? null : response.json();
  }
  throw new ApiError(401, { detail: "the service refused the token" });
}
