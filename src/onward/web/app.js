// onward web chat: plain JavaScript modules, no build step, no third-party code.
// This module signs in, lists goals and conversations, and wires the page's controls.

import { $, ApiError, api, el, session, showError } from "./api.js";
import { ConversationView } from "./conversation.js";

const TOKEN_KEY = "onward.token";
const app = { info: null, goals: new Map(), view: null };

function showSignin() {
  localStorage.removeItem(TOKEN_KEY);
  session.token = null;
  $("signin").hidden = false;
  $("signin-token").focus();
}

function renderGoals(goals) {
  const select = $("goal-select");
  select.replaceChildren();
  app.goals = new Map(goals.map((g) => [g.name, g]));
  for (const goal of goals) {
    const option = el("option", null, goal.name);
    option.value = goal.name;
    select.append(option);
  }
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
  const list = $("conversation-list");
  list.replaceChildren();
  for (const c of data.conversations) {
    const item = el("li");
    item.dataset.id = c.id;
    item.append(el("span", "title", c.title || `(${c.goal})`));
    item.dataset.titled = c.title ? "1" : "";
    item.append(el("span", "meta", `${c.goal} · ${new Date(c.created_at).toLocaleString()}`));
    if (app.view && app.view.id === c.id) item.classList.add("current");
    item.addEventListener("click", () => openConversation(c.id));
    list.append(item);
  }
  return data.conversations;
}

async function openConversation(id) {
  if (app.view) app.view.close();
  app.view = new ConversationView(id, app.goals);
  history.replaceState(null, "", "#" + encodeURIComponent(id));
  $("empty").hidden = true;
  $("conversation").hidden = false;
  $("status").textContent = "";
  $("usage").textContent = "";
  $("approval-badge").hidden = true;
  for (const item of $("conversation-list").children) {
    item.classList.toggle("current", item.dataset.id === id);
  }
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
  try {
    const created = await api("/v1/conversations", { method: "POST", body: { goal } });
    await refreshList();
    await openConversation(created.id);
  } catch (error) {
    showError(error);
  }
}

async function sendMessage(event) {
  event.preventDefault();
  const input = $("message-input");
  const text = input.value;
  if (!text.trim() || !app.view) return;
  $("send-button").disabled = true;
  try {
    await api(`/v1/conversations/${encodeURIComponent(app.view.id)}/messages`, {
      method: "POST",
      body: { text },
    });
    input.value = "";
    // The first message names a conversation that started without one.
    const item = [...$("conversation-list").children].find((i) => i.dataset.id === app.view.id);
    if (item && !item.dataset.titled) await refreshList();
  } catch (error) {
    showError(error);
  } finally {
    $("send-button").disabled = app.view.ended;
  }
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

async function start() {
  $("signin").hidden = true;
  try {
    const [me, info, goals] = await Promise.all([
      api("/v1/me"), api("/v1/info"), api("/v1/goals"),
    ]);
    app.info = info;
    $("user-name").textContent = me.user;
    $("sign-out").hidden = false;
    $("model-name").textContent = info.model.name;
    $("model-name").title = info.model.description;
    $("offline-badge").hidden = !info.model.offline;
    renderGoals(goals.goals);
    const conversations = await refreshList();
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (wanted && conversations.some((c) => c.id === wanted)) await openConversation(wanted);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showError(error);
  }
}

function takeTokenFromUrl() {
  // Like Jupyter: `?token=` signs the browser in once, then leaves the address bar.
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return localStorage.getItem(TOKEN_KEY);
}

function wire() {
  $("goal-select").addEventListener("change", showGoal);
  $("new-form").addEventListener("submit", startConversation);
  $("composer").addEventListener("submit", sendMessage);
  $("message-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("budget-form").addEventListener("submit", raiseBudget);
  $("delete-button").addEventListener("click", deleteConversation);
  $("sign-out").addEventListener("click", () => {
    if (app.view) app.view.close();
    showSignin();
  });
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    session.token = $("signin-token").value.trim();
    if (!session.token) return;
    localStorage.setItem(TOKEN_KEY, session.token);
    $("signin-token").value = "";
    start();
  });
}

session.onUnauthorized = showSignin;
wire();
session.token = takeTokenFromUrl();
if (session.token) start();
else showSignin();
