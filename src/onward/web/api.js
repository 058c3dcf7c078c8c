// The HTTP API client and small DOM helpers shared by the page's modules.
//
// The page holds no token: the browser sends the HttpOnly session cookie that
// `POST /session` set, on every request to this origin.

export const session = {
  onUnauthorized: () => {},
  onUnavailable: () => {},
};

export const $ = (id) => document.getElementById(id);

export class ApiError extends Error {
  constructor(status, code, reason) {
    super(reason);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, options = {}) {
  const headers = {};
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    credentials: "same-origin",
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    if (response.status === 401 && !options.quiet) session.onUnauthorized();
    if (response.status === 503) session.onUnavailable();
    throw new ApiError(response.status, error.code || "http_" + response.status,
      error.reason || response.statusText);
  }
  return data;
}

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

let errorTimer = null;
export function showError(error) {
  const bar = $("error-bar");
  bar.textContent = error instanceof Error ? error.message : String(error);
  bar.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => { bar.hidden = true; }, 8000);
}

export function usageText(u) {
  if (!u) return "";
  let cost;
  const known = u.cost_usd || 0;
  if (u.cost_unknown_requests > 0 && known === 0) cost = "cost unknown";
  else if (u.cost_unknown_requests > 0) cost = `≥ $${known.toFixed(4)} (${u.cost_unknown_requests} calls unpriced)`;
  else cost = `$${known.toFixed(4)}`;
  const tokens = u.input_tokens + u.output_tokens;
  return `${u.requests} model calls · ${tokens} tokens · ${cost}`;
}
