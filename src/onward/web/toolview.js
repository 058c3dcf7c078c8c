// Tool calls for people: one line that says what was done and what came of it, with
// the arguments and the result behind a disclosure, rendered generically from their
// JSON (lists of objects become tables, objects become key/value lists).
//
// Everything goes through textContent; the only links made are http(s) URLs, set as
// href attributes (never parsed as markup).

import { el } from "./api.js";

const PAST = {
  search: "Searched", find: "Found", get: "Got", create: "Created", list: "Listed",
  book: "Booked", send: "Sent", check: "Checked", charge: "Charged", add: "Added",
  fetch: "Fetched", read: "Read", write: "Wrote", run: "Ran", make: "Made",
  cancel: "Cancelled", delegate: "Delegated", lookup: "Looked up", refund: "Refunded",
  update: "Updated", delete: "Deleted", query: "Queried", compute: "Computed",
  retrieve: "Retrieved", order: "Ordered", reserve: "Reserved", notify: "Notified",
};
const FROM_KEYS = ["origin", "from", "departure", "source"];
const TO_KEYS = ["destination", "to", "arrival", "target"];
const MAX_COLUMNS = 7;
const MAX_CELL = 120;

export function words(name) {
  return String(name).replace(/[_-]+/g, " ").trim();
}

// "search_flights" -> "Searched flights"; "refund" -> "Refunded"; others "Ran x".
export function toolPhrase(name, done) {
  const [verb, ...rest] = words(name).split(" ");
  const present = verb.charAt(0).toUpperCase() + verb.slice(1);
  if (!done) return [present, ...rest].join(" ");
  const past = PAST[verb.toLowerCase()];
  return past ? [past, ...rest].join(" ") : `Ran ${words(name)}`;
}

function scalar(value) {
  return value === null || ["string", "number", "boolean"].includes(typeof value);
}

function short(value, max = 48) {
  const text = String(value);
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

// "Austin → San Francisco, 2026-03-21" from the call's scalar arguments.
export function argsPhrase(args) {
  if (!args || typeof args !== "object") return "";
  const keys = Object.keys(args).filter((k) => scalar(args[k]) && args[k] !== "" && args[k] !== null);
  const from = keys.find((k) => FROM_KEYS.includes(k));
  const to = keys.find((k) => TO_KEYS.includes(k));
  const parts = [];
  if (from && to) parts.push(`${short(args[from])} → ${short(args[to])}`);
  for (const k of keys) {
    if (k === from || k === to) continue;
    parts.push(short(args[k]));
    if (parts.length >= 3) break;
  }
  return parts.join(", ");
}

function listsOf(value) {
  if (Array.isArray(value)) return [["", value]];
  if (!value || typeof value !== "object") return [];
  return Object.entries(value).filter(([, v]) => Array.isArray(v));
}

function count(n, noun) {
  if (!noun) return n === 0 ? "nothing found" : `${n} found`;
  const one = noun.endsWith("ies") ? noun.slice(0, -3) + "y" : noun.replace(/s$/, "");
  if (n === 0) return `no ${words(noun)}`;
  return `${n} ${words(n === 1 ? one : noun)}`;
}

// "4 flights", "no events", "inv_123", or the error, from a tool result.
export function resultPhrase(ok, content, error) {
  if (!ok) return error ? `failed: ${short(error)}` : "failed";
  const lists = listsOf(content);
  if (lists.length) return lists.map(([k, v]) => count(v.length, k)).join(", ");
  if (content && typeof content === "object") {
    const id = Object.keys(content).find((k) => k === "id" || k.endsWith("_id"));
    const status = typeof content.status === "string" ? ` (${content.status})` : "";
    if (id && scalar(content[id])) return `${short(content[id], 18)}${status}`;
    return status ? status.trim().slice(1, -1) : "done";
  }
  if (scalar(content) && content !== null && content !== "") return short(content);
  return "done";
}

function isUrl(text) {
  return typeof text === "string" && /^https?:\/\/[^\s]+$/.test(text);
}

function cellValue(value) {
  if (isUrl(value)) {
    const a = el("a", null, value);
    a.href = value;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }
  if (scalar(value)) {
    const text = value === null ? "—" : String(value);
    return document.createTextNode(text.length > MAX_CELL ? text.slice(0, MAX_CELL - 1) + "…" : text);
  }
  return render(value);
}

function table(rows, label) {
  const columns = [];
  for (const row of rows) {
    for (const k of Object.keys(row)) if (!columns.includes(k) && columns.length < MAX_COLUMNS) columns.push(k);
  }
  const wrap = el("div", "table-wrap");
  // It scrolls sideways on a phone: focusable, so the keyboard can scroll it too.
  wrap.tabIndex = 0;
  wrap.setAttribute("role", "region");
  wrap.setAttribute("aria-label", label || "Table");
  const t = el("table", "result-table");
  const head = el("tr");
  for (const c of columns) {
    const th = el("th", null, words(c));
    th.scope = "col";
    head.append(th);
  }
  const thead = el("thead");
  thead.append(head);
  const tbody = el("tbody");
  for (const row of rows) {
    const tr = el("tr");
    for (const c of columns) {
      const td = el("td");
      td.append(cellValue(row[c] ?? null));
      tr.append(td);
    }
    tbody.append(tr);
  }
  t.append(thead, tbody);
  wrap.append(t);
  return wrap;
}

// Any JSON value as something a person reads.
export function render(value, label) {
  if (Array.isArray(value)) {
    if (value.length && value.every((v) => v && typeof v === "object" && !Array.isArray(v))) return table(value, label);
    const list = el("ul", "result-list");
    for (const v of value) {
      const li = el("li");
      li.append(cellValue(v));
      list.append(li);
    }
    if (!value.length) list.append(el("li", "muted", "none"));
    return list;
  }
  if (value && typeof value === "object") {
    const dl = el("dl", "result-fields");
    for (const [k, v] of Object.entries(value)) {
      dl.append(el("dt", null, words(k)));
      const dd = el("dd");
      dd.append(cellValue(v));
      dl.append(dd);
    }
    return dl;
  }
  return el("span", null, value === null || value === undefined ? "—" : String(value));
}

// The list-shaped parts of a result first (as tables), then its other fields.
export function renderResult(content) {
  const box = el("div", "result-body");
  const lists = listsOf(content);
  if (Array.isArray(content) || typeof content !== "object" || content === null) {
    box.append(render(content));
    return box;
  }
  const rest = Object.fromEntries(Object.entries(content).filter(([, v]) => !Array.isArray(v)));
  if (Object.keys(rest).length) box.append(render(rest));
  for (const [k, v] of lists) {
    box.append(el("div", "result-label", words(k)), render(v, words(k)));
  }
  return box;
}

// http(s) links anywhere in a result (a pay link), shown outside the disclosure.
export function resultLinks(content) {
  const found = [];
  const walk = (v, key) => {
    if (found.length >= 3) return;
    if (isUrl(v)) found.push([key, v]);
    else if (v && typeof v === "object" && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, k);
    }
  };
  walk(content, "");
  return found;
}
