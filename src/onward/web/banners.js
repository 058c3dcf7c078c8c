// Banners for what is down: the API cannot reach Temporal (from `/healthz`), or no
// worker polls a conversation's task queue (the stream's `worker` events). Both say
// what it means for the user's messages.

import { $ } from "./api.js";

const HEALTH_EVERY_MS = 10_000;
const HEALTH_SOON_MS = 2_000;

const state = { temporal: null, worker: null, timer: null };

function show() {
  const banner = $("banner");
  const lines = [];
  if (state.temporal) {
    lines.push(`The server cannot reach Temporal (${state.temporal}). ` +
      "Conversations cannot be started or answered until it is back; nothing is lost.");
  }
  if (state.worker) {
    lines.push(`No worker is running for this conversation${state.worker === true ? "" : ` (${state.worker})`}. ` +
      "Messages you send wait in the queue and are answered when one starts.");
  }
  banner.textContent = lines.join(" ");
  banner.hidden = lines.length === 0;
}

async function checkHealth() {
  clearTimeout(state.timer);
  let next = HEALTH_EVERY_MS;
  try {
    const response = await fetch("/healthz", { credentials: "same-origin" });
    const body = await response.json();
    const t = body.temporal || {};
    state.temporal = t.reachable ? null : `${t.address || "its address"}: ${t.error || "not reachable"}`;
  } catch (_) {
    state.temporal = null; // the API itself is away: the stream's reconnect shows that
  }
  if (state.temporal) next = HEALTH_SOON_MS;
  show();
  state.timer = setTimeout(checkHealth, next);
}

export function watchHealth() {
  checkHealth();
}

// A request failed with 503: look again now rather than at the next tick.
export function healthSuspect() {
  checkHealth();
}

export function workerPolling(data) {
  state.worker = data.polling ? null : data.detail || true;
  show();
}

export function forgetWorker() {
  state.worker = null;
  show();
}
