// onward web chat: plain JavaScript modules, no build step, no third-party code.
// This module signs in, lists goals and conversations, and wires the page's controls.

import { $, ApiError, api, el, session, showError } from "./api.js";
import { forgetWorker, healthSuspect, watchHealth, workerPolling } from "./banners.js";
import { ConversationView } from "./conversation.js";
import { customTitle, setCustomTitle, titleFor } from "./titles.js";

const GOAL_KEY = "onward.goal";
const NARROW = window.matchMedia("(max-width: 767px)");
const app = { info: null, vocab: null, goals: new Map(), view: null, list: [] };

// ------------------------------------------------------------------ sign-in

function showSignin() {
  if (app.view) app.view.close();
  app.view = null;
  $("signin").hidden = false;
  $("signin-token").focus();
}

// Trades a token for the HttpOnly session cookie; the token is never stored here.
async function signIn(token) {
  try {
    await api("/session", { method: "POST", body: { token }, quiet: true });
    return true;
  } catch (error) {
    showError(error instanceof ApiError && error.status === 401 ? "That token is not valid." : error);
    return false;
  }
}

// Like Jupyter: `?token=` signs the browser in once. The address bar loses it first,
// so it is in no later URL, history entry or referrer.
function takeTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token) {
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return token;
}

// ------------------------------------------------------------------ goals and list

function renderGoals(goals) {
  const select = $("goal-select");
  select.replaceChildren();
  app.goals = new Map(goals.map((g) => [g.name, g]));
  for (const goal of goals) {
    const option = el("option", null, goal.name);
    option.value = goal.name;
    select.append(option);
  }
  const remembered = localStorage.getItem(GOAL_KEY);
  if (remembered && app.goals.has(remembered)) select.value = remembered;
  showGoal();
}

function showGoal() {
  const goal = app.goals.get($("goal-select").value);
  $("goal-description").textContent = goal ? goal.description : "";
  const tools = $("goal-tools");
  tools.replaceChildren();
  for (const t of goal ? goal.tools : []) {
    const item = el("li", null, t.name + " ");
    item.append(el("span", `policy policy-${t.approval}`, t.approval));
    item.title = t.description;
    tools.append(item);
  }
}

async function refreshList() {
  const data = await api("/v1/conversations");
  app.list = data.conversations;
  const list = $("conversation-list");
  list.replaceChildren();
  for (const c of data.conversations) {
    const item = el("li");
    item.dataset.id = c.id;
    item.dataset.titled = c.title ? "1" : "";
    const open = el("button", "open");
    open.type = "button";
    open.append(el("span", "title", titleFor(c)),
      el("span", "meta", new Date(c.created_at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" })));
    open.addEventListener("click", () => openConversation(c.id));
    item.append(open);
    if (app.view && app.view.id === c.id) {
      item.classList.add("current");
      open.setAttribute("aria-current", "true");
    }
    list.append(item);
  }
  showTitle();
  return data.conversations;
}

function showTitle() {
  const c = app.view && app.list.find((x) => x.id === app.view.id);
  $("conversation-title").textContent = c ? titleFor(c) : "";
}

// ------------------------------------------------------------------ drawer

function setDrawer(open) {
  document.body.classList.toggle("drawer-open", open);
  $("menu-button").setAttribute("aria-expanded", String(open));
  if (open) $("goal-select").focus();
}

// ------------------------------------------------------------------ a conversation

function announce(text) {
  // Finished messages only (never tokens): a polite live region outside the list.
  const box = $("announcer");
  box.textContent = "";
  setTimeout(() => { box.textContent = text.length > 400 ? text.slice(0, 400) + "…" : text; }, 50);
}

function controls(view) {
  if (view !== app.view) return;
  const busy = view.busy();
  $("stop-button").hidden = !busy;
  $("retry-button").hidden = busy || view.ended || !view.lastUserText();
}

async function openConversation(id) {
  if (app.view) app.view.close();
  forgetWorker();
  app.view = new ConversationView(id, {
    goals: app.goals,
    vocab: app.vocab,
    announce,
    onStatus: controls,
    onFork: forkConversation,
    onWorker: (cid, data) => { if (app.view && app.view.id === cid) workerPolling(data); },
  });
  history.replaceState(null, "", "#" + encodeURIComponent(id));
  $("empty").hidden = true;
  $("conversation").hidden = false;
  $("status").textContent = "";
  $("status-words").textContent = "";
  $("usage").textContent = "";
  $("approval-badge").hidden = true;
  for (const item of $("conversation-list").children) {
    const current = item.dataset.id === id;
    item.classList.toggle("current", current);
    item.querySelector("button.open")?.toggleAttribute("aria-current", current);
  }
  showTitle();
  if (NARROW.matches) setDrawer(false);
  try {
    await app.view.open();
  } catch (error) {
    showError(error);
  }
  $("message-input").focus();
}

async function startConversation(event) {
  event.preventDefault();
  const goal = $("goal-select").value;
  localStorage.setItem(GOAL_KEY, goal);
  try {
    const created = await api("/v1/conversations", { method: "POST", body: { goal } });
    await refreshList();
    await openConversation(created.id);
  } catch (error) {
    showError(error);
  }
}

async function postMessage(text) {
  const view = app.view;
  // Shown at once; "queued" once the server holds it, cleared when the agent takes it.
  const bubble = view.showQueued(null, text, "sending…", true);
  try {
    const accepted = await api(`/v1/conversations/${encodeURIComponent(view.id)}/messages`, {
      method: "POST",
      body: { text },
    });
    bubble.querySelector(".queued-mark").textContent = "queued";
    bubble.dataset.mark = "queued";
    view.rekeyQueued(bubble, accepted.id);
    // The first message names a conversation that started without one.
    const item = [...$("conversation-list").children].find((i) => i.dataset.id === view.id);
    if (item && !item.dataset.titled) await refreshList();
    return true;
  } catch (error) {
    bubble.remove();
    showError(error);
    return false;
  }
}

async function sendMessage(event) {
  event.preventDefault();
  const input = $("message-input");
  const text = input.value;
  if (!text.trim() || !app.view) return;
  input.value = "";
  if (!(await postMessage(text))) input.value = input.value || text;
}

async function stopTurn() {
  if (!app.view) return;
  try {
    await api(`/v1/conversations/${encodeURIComponent(app.view.id)}/stop`, { method: "POST", body: {} });
  } catch (error) {
    showError(error);
  }
}

async function retryTurn() {
  const text = app.view && app.view.lastUserText();
  if (text) await postMessage(text);
}

async function forkConversation(id, index) {
  try {
    const created = await api(`/v1/conversations/${encodeURIComponent(id)}/fork`, {
      method: "POST",
      body: { at: index },
    });
    await refreshList();
    await openConversation(created.id || created.conversation_id);
  } catch (error) {
    showError(error);
  }
}

function renameConversation() {
  if (!app.view) return;
  const c = app.list.find((x) => x.id === app.view.id);
  const input = $("title-input");
  input.value = customTitle(app.view.id) || (c ? titleFor(c) : "");
  $("conversation-title").hidden = true;
  $("rename-button").hidden = true;
  input.hidden = false;
  input.focus();
  input.select();
}

function finishRename(save) {
  const input = $("title-input");
  if (input.hidden) return;
  if (save && app.view) setCustomTitle(app.view.id, input.value.trim());
  input.hidden = true;
  $("conversation-title").hidden = false;
  $("rename-button").hidden = false;
  refreshList().catch(showError);
  $("rename-button").focus();
}

async function raiseBudget(event) {
  event.preventDefault();
  const tokens = $("budget-tokens").value;
  const cost = $("budget-cost").value;
  const body = {};
  if (tokens) body.max_tokens = Number(tokens);
  if (cost) body.max_cost_usd = Number(cost);
  try {
    await api(`/v1/conversations/${encodeURIComponent(app.view.id)}/budget`, { method: "POST", body });
  } catch (error) {
    showError(error);
  }
}

async function deleteConversation() {
  if (!app.view || !confirm("Delete this conversation? It will be ended and removed.")) return;
  try {
    await api(`/v1/conversations/${encodeURIComponent(app.view.id)}`, { method: "DELETE" });
    app.view.close();
    app.view = null;
    history.replaceState(null, "", location.pathname);
    $("conversation").hidden = true;
    $("empty").hidden = false;
    await refreshList();
  } catch (error) {
    showError(error);
  }
}

// ------------------------------------------------------------------ start

async function start() {
  $("signin").hidden = true;
  try {
    const [me, info, goals] = await Promise.all([api("/v1/me"), api("/v1/info"), api("/v1/goals")]);
    app.info = info;
    app.vocab = info.vocabulary; // the server's own words for statuses and events
    $("user-name").textContent = me.user;
    $("sign-out").hidden = false;
    $("model-name").textContent = info.model.name;
    $("model-name").title = info.model.description;
    $("offline-badge").hidden = !info.model.offline;
    renderGoals(goals.goals);
    const conversations = await refreshList();
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (wanted && conversations.some((c) => c.id === wanted)) await openConversation(wanted);
    else if (NARROW.matches && !wanted) setDrawer(true);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showError(error);
  }
}

function wire() {
  $("goal-select").addEventListener("change", () => {
    localStorage.setItem(GOAL_KEY, $("goal-select").value);
    showGoal();
  });
  $("new-form").addEventListener("submit", startConversation);
  $("composer").addEventListener("submit", sendMessage);
  $("message-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop-button").addEventListener("click", stopTurn);
  $("retry-button").addEventListener("click", retryTurn);
  $("rename-button").addEventListener("click", renameConversation);
  $("title-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); finishRename(true); }
    if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); finishRename(false); }
  });
  $("title-input").addEventListener("blur", () => finishRename(true));
  $("budget-form").addEventListener("submit", raiseBudget);
  $("delete-button").addEventListener("click", deleteConversation);
  $("menu-button").addEventListener("click", () => setDrawer(!document.body.classList.contains("drawer-open")));
  $("scrim").addEventListener("click", () => setDrawer(false));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && document.body.classList.contains("drawer-open")) {
      setDrawer(false);
      $("menu-button").focus();
    }
  });
  NARROW.addEventListener("change", () => setDrawer(false));
  $("sign-out").addEventListener("click", async () => {
    try {
      await api("/session", { method: "DELETE", quiet: true });
    } catch (_) {
      // signed out locally either way
    }
    showSignin();
  });
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const token = $("signin-token").value.trim();
    $("signin-token").value = "";
    if (token && (await signIn(token))) start();
  });
}

async function boot() {
  session.onUnauthorized = showSignin;
  session.onUnavailable = healthSuspect;
  wire();
  watchHealth();
  const token = takeTokenFromUrl();
  if (token && !(await signIn(token))) return showSignin();
  try {
    await api("/v1/me", { quiet: true });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return showSignin();
  }
  return start();
}

boot();
