// The console's one way to the connector: the management API, with the session cookie and its CSRF token.
// Errors carry the API's own reason ([{message, type, path}]) so pages show it as is, never a stack trace.

const BASE = "/api/management";
const session = { csrfHeader: "X-CSRF-Token", csrfToken: "", participantId: "", publicUrl: "" };
let onSignedOut = () => {};

export class ApiError extends Error {
  constructor(status, errors) {
    const list = Array.isArray(errors) ? errors : [{ message: String(errors) }];
    super(list.map((e) => e.message).filter(Boolean).join("; ") || `the connector answered ${status}`);
    this.status = status;
    this.errors = list;
  }
}

export function currentSession() { return session; }

export function whenSignedOut(callback) { onSignedOut = callback; }

async function errorOf(response) {
  const text = await response.text();
  try { return new ApiError(response.status, JSON.parse(text)); }
  catch { return new ApiError(response.status, text || response.statusText); }
}

async function call(url, method, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers[session.csrfHeader] = session.csrfToken;
  let response;
  try {
    response = await fetch(url, { method, headers, credentials: "same-origin",
                                  body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (exc) {
    throw new ApiError(0, `the connector could not be reached (${exc.message}); is it running?`);
  }
  if (response.status === 401 && url.startsWith(BASE)) {
    const error = await errorOf(response);
    onSignedOut(error.message);
    throw error;
  }
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export const api = {
  get: (path) => call(BASE + path, "GET"),
  post: (path, body = {}) => call(BASE + path, "POST", body),
  put: (path, body) => call(BASE + path, "PUT", body),
  del: (path) => call(BASE + path, "DELETE"),
  /** Every row of a QuerySpec list endpoint, up to `limit`, newest first unless told. */
  list: (resource, spec = {}) => call(`${BASE}/v3/${resource}/request`, "POST",
                                      { limit: 200, sortField: "createdAt", sortOrder: "DESC", ...spec }),
};

export function enc(id) { return encodeURIComponent(id); }

// -- the console's own session resource --------------------------------------------------------------------------
export async function loadSession() {
  const response = await fetch("/console/session", { credentials: "same-origin" });
  if (!response.ok) return null;
  Object.assign(session, await response.json());
  return session;
}

export async function signIn(apiKey) {
  const answer = await call("/console/session", "POST", { apiKey });
  Object.assign(session, answer);
  return session;
}

export async function signOut() {
  await call("/console/session", "DELETE");
  session.csrfToken = "";
}

/** Which optional parts of the API this connector serves, read from its OpenAPI description. */
export async function features() {
  try {
    const spec = await call("/api/management/openapi.json", "GET");
    const paths = Object.keys(spec.paths || {});
    return { compute: paths.some((p) => p.startsWith(`${BASE}/v3/computejobs`)),
             consent: paths.some((p) => p.startsWith(`${BASE}/v3/consents`)) };
  } catch {
    return { compute: false, consent: false };
  }
}
