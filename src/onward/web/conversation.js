// One open conversation: its transcript, tool cards, approvals and live event stream.
//
// Safety rule: text from the model or a user never reaches innerHTML unescaped. Plain
// text goes through textContent; assistant replies go through renderMarkdown, which
// escapes everything first and only then adds a few fixed tags.

import { $, api, el, session, showError, usageText } from "./api.js";
import { renderMarkdown } from "./markdown.js";

const OFFSET_KEY = "onward.offset.";
const STREAM_EVENTS = [
  "message", "status", "usage", "model_call_started", "tool_call_proposed",
  "tool_call_started", "tool_call_finished", "approval_requested", "approval_decided",
  "delta",
];
const STATUS_LABELS = {
  waiting_for_user: "waiting for you",
  thinking: "thinking…",
  retrying_model: "retrying the model",
  running_tools: "running tools",
  waiting_for_approval: "waiting for approval",
  budget_exhausted: "budget reached",
  ended: "ended",
};

export class ConversationView {
  constructor(id, goals) {
    this.id = id;
    this.goals = goals; // name -> goal, for the starter prompt
    this.rendered = new Map(); // transcript index -> element
    this.cards = new Map(); // call id -> tool card
    this.pending = new Map(); // call id -> pending approval
    this.lastOffset = Number(sessionStorage.getItem(OFFSET_KEY + id) ?? -1);
    this.source = null;
    this.retry = null;
    this.closed = false;
    this.ended = false;
    this.streamKey = null;
    this.streaming = el("div", "message assistant streaming");
    this.streaming.hidden = true;
    $("messages").replaceChildren(this.streaming);
  }

  async open() {
    const detail = await api(`/v1/conversations/${encodeURIComponent(this.id)}`);
    if (this.closed) return;
    $("conversation-goal").textContent = detail.goal;
    $("workflow-link").href = detail.links.workflow;
    const goal = this.goals.get(detail.goal);
    if (goal && goal.starter_prompt) {
      const intro = el("div", "message intro", goal.starter_prompt);
      $("messages").insertBefore(intro, this.streaming);
    }
    detail.messages.forEach((message, i) => this.renderMessage(detail.offset + i, message));
    for (const approval of detail.pending_approvals) this.approvalRequested(approval);
    this.setStatus(detail.status, detail.status_detail);
    $("usage").textContent = usageText(detail.usage);
    this.connect();
  }

  close() {
    this.closed = true;
    clearTimeout(this.retry);
    if (this.source) this.source.close();
  }

  // EventSource reconnects by itself (sending Last-Event-ID) after a dropped
  // connection; after an HTTP error it gives up, and we reconnect from our offset.
  connect() {
    if (this.closed || this.ended) return;
    const url = `/v1/conversations/${encodeURIComponent(this.id)}/events` +
      `?token=${encodeURIComponent(session.token)}&after=${this.lastOffset}`;
    const source = new EventSource(url);
    this.source = source;
    for (const name of STREAM_EVENTS) {
      source.addEventListener(name, (e) => this.onEvent(name, e));
    }
    source.addEventListener("end", () => {
      source.close();
      this.ended = true;
      this.setStatus("ended");
    });
    source.addEventListener("stream_error", (e) => {
      source.close();
      showError("The event stream failed: " + JSON.parse(e.data).reason);
      this.retry = setTimeout(() => this.connect(), 3000);
    });
    source.onerror = () => {
      $("status").classList.add("reconnecting");
      if (source.readyState === EventSource.CLOSED && !this.closed && !this.ended) {
        this.retry = setTimeout(() => this.connect(), 2000);
      }
    };
    source.onopen = () => $("status").classList.remove("reconnecting");
  }

  onEvent(name, e) {
    const offset = Number(e.lastEventId);
    // Offsets only grow: anything at or below the last one was already applied.
    if (Number.isFinite(offset) && e.lastEventId !== "" && offset <= this.lastOffset) return;
    this.lastOffset = offset;
    sessionStorage.setItem(OFFSET_KEY + this.id, String(offset));
    const data = JSON.parse(e.data);
    switch (name) {
      case "delta": return this.delta(data);
      case "model_call_started": return this.resetStreaming();
      case "message": return this.renderMessage(data.index, data.message);
      case "status": return this.setStatus(data.status, data.detail);
      case "usage": $("usage").textContent = usageText(data.usage); return;
      case "tool_call_started": return this.cardState(data.call_id, "running…", null);
      case "tool_call_finished":
        return this.cardState(data.call_id, data.ok ? "done" : "failed", data.ok ? "done" : "failed");
      case "approval_requested": return this.approvalRequested(data);
      case "approval_decided": return this.approvalDecided(data.call_id, data.decision);
      default: return undefined;
    }
  }

  resetStreaming() {
    this.streamKey = null;
    this.streaming.textContent = "";
    this.streaming.hidden = true;
  }

  delta(d) {
    const key = d.call + "#" + d.attempt; // a retried call starts its text over
    if (key !== this.streamKey) {
      this.streamKey = key;
      this.streaming.textContent = "";
    }
    this.streaming.textContent += d.text;
    this.streaming.hidden = false;
    this.scroll();
  }

  place(index, node) {
    node.dataset.index = String(index);
    this.rendered.set(index, node);
    const box = $("messages");
    const later = [...box.children].find((c) => c.dataset.index !== undefined && Number(c.dataset.index) > index);
    box.insertBefore(node, later || this.streaming);
    this.scroll();
  }

  renderMessage(index, m) {
    if (this.rendered.has(index)) return;
    if (m.kind === "user") {
      this.place(index, el("div", "message user", m.text));
    } else if (m.kind === "assistant") {
      const node = el("div", "message assistant");
      node.innerHTML = renderMarkdown(m.text); // escaped first: see renderMarkdown
      this.resetStreaming();
      this.place(index, node);
    } else if (m.kind === "notice") {
      this.place(index, el("div", `message notice ${m.level}`, m.text));
    } else if (m.kind === "tool_call") {
      this.place(index, this.card(m.call_id, m.tool, m.args));
    } else if (m.kind === "tool_result") {
      const card = this.cards.get(m.call_id) || this.card(m.call_id, m.tool, null);
      const body = m.ok ? m.content : m.error;
      card.querySelector(".result-label").hidden = false;
      const pre = card.querySelector(".result");
      pre.hidden = false;
      pre.textContent = typeof body === "string" ? body : JSON.stringify(body, null, 2);
      this.cardState(m.call_id, m.ok ? "done" : "failed", m.ok ? "done" : "failed");
      this.rendered.set(index, card);
      if (!card.isConnected) this.place(index, card);
    }
  }

  card(callId, tool, args) {
    const card = el("div", "tool-card");
    card.dataset.callId = callId;
    const head = el("div");
    head.append(el("span", "tool-name", tool), el("span", "tool-state", "proposed"));
    const argsPre = el("pre", "args", args ? JSON.stringify(args, null, 2) : "");
    argsPre.hidden = !args;
    const label = el("div", "result-label", "result");
    label.hidden = true;
    const result = el("pre", "result");
    result.hidden = true;
    card.append(head, argsPre, label, result);
    this.cards.set(callId, card);
    return card;
  }

  cardState(callId, text, cls) {
    const card = this.cards.get(callId);
    if (!card) return;
    card.querySelector(".tool-state").textContent = text;
    card.classList.remove("pending", "done", "failed");
    if (cls) card.classList.add(cls);
  }

  approvalRequested(a) {
    this.pending.set(a.call_id, a);
    const card = this.cards.get(a.call_id) || this.card(a.call_id, a.tool, a.args);
    if (!card.isConnected) $("messages").insertBefore(card, this.streaming);
    card.querySelector(".approval")?.remove();
    this.cardState(a.call_id, "needs your approval", "pending");
    const row = el("div", "approval");
    const feedback = el("input");
    feedback.placeholder = "Feedback for the agent (optional, sent with Reject)";
    const approve = el("button", "approve", "Approve");
    const reject = el("button", "reject", "Reject");
    approve.type = reject.type = "button";
    approve.dataset.callId = reject.dataset.callId = a.call_id;
    const decide = async (decision) => {
      approve.disabled = reject.disabled = true;
      try {
        await api(`/v1/conversations/${encodeURIComponent(this.id)}/approvals/${encodeURIComponent(a.call_id)}`, {
          method: "POST",
          body: { decision, args_hash: a.args_hash, feedback: feedback.value || null },
        });
      } catch (error) {
        approve.disabled = reject.disabled = false;
        showError(error);
      }
    };
    approve.addEventListener("click", () => decide("approve"));
    reject.addEventListener("click", () => decide("reject"));
    row.append(approve, reject, feedback);
    card.append(row);
    this.updateBadge();
    this.scroll();
  }

  approvalDecided(callId, decision) {
    this.pending.delete(callId);
    const card = this.cards.get(callId);
    if (card) {
      card.querySelector(".approval")?.remove();
      const label = { approve: "approved", reject: "rejected", expired: "expired" }[decision] || decision;
      this.cardState(callId, label, decision === "approve" ? null : "failed");
    }
    this.updateBadge();
  }

  updateBadge() {
    const badge = $("approval-badge");
    const n = this.pending.size;
    badge.hidden = n === 0;
    badge.textContent = n === 1 ? "1 approval pending" : `${n} approvals pending`;
  }

  setStatus(status, detail) {
    const node = $("status");
    node.dataset.status = status;
    node.textContent = STATUS_LABELS[status] || status;
    node.title = detail || "";
    const budget = status === "budget_exhausted";
    $("budget-form").hidden = !budget;
    $("budget-reason").textContent = budget ? detail || "The budget is reached." : "";
    const ended = status === "ended";
    $("message-input").disabled = ended;
    $("send-button").disabled = ended;
    if (ended) {
      this.resetStreaming();
      this.pending.clear();
      this.updateBadge();
    }
  }

  scroll() {
    const box = $("messages");
    box.scrollTop = box.scrollHeight;
  }
}
