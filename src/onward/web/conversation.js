// One open conversation: its transcript, tool cards, approvals and live event stream,
// and the progress of the sub-agents it delegates to (lines between the messages).
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
  "agent_started", "agent_finished", "handoff", "review", "delta",
];
const PLAN_TOOL = "delegate";
const AGENT_STATES = {
  finished: "finished",
  asked: "needs more information",
  budget_exhausted: "stopped at its budget",
  cancelled: "cancelled",
  failed: "failed",
  ended: "ended",
  reused: "reused (done earlier)",
};
const STATUS_LABELS = {
  waiting_for_user: "waiting for you",
  thinking: "thinking…",
  retrying_model: "retrying the model",
  running_tools: "running tools",
  waiting_for_approval: "waiting for approval",
  delegating: "agents working",
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
    this.agents = new Map(); // child conversation id -> its progress line
    this.streamIndex = -1; // transcript index of the latest message seen on the stream
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
    this.streamIndex = detail.offset + detail.messages.length - 1;
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
      case "message":
        this.streamIndex = data.index;
        return this.renderMessage(data.index, data.message);
      case "status": return this.setStatus(data.status, data.detail);
      case "usage": $("usage").textContent = usageText(data.usage); return;
      case "tool_call_started": return this.cardState(data.call_id, "running…", null);
      case "tool_call_finished":
        return this.cardState(data.call_id, data.ok ? "done" : "failed", data.ok ? "done" : "failed");
      case "approval_requested": return this.approvalRequested(data);
      case "approval_decided": return this.approvalDecided(data.call_id, data.decision);
      case "agent_started": return this.agentProgress(data, "running", "running");
      case "agent_finished":
        return this.agentProgress(data, AGENT_STATES[data.detail] || data.detail, data.ok ? "done" : "failed");
      case "handoff":
        $("conversation-goal").textContent = data.agent;
        return this.placeLine(el("div", "agent-line handoff", `Now talking to ${data.agent}`));
      case "review":
        return this.placeLine(data.ok
          ? el("div", "agent-line review approved", "Reviewer approved")
          : el("div", "agent-line review rejected",
            "Reviewer asked for changes" + (data.detail ? `: ${data.detail}` : "")));
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
    this.rendered.set(index, node);
    this.insertAt(index, node);
  }

  // Progress lines are not transcript messages: they go after the message that came
  // before them on the stream, so a replayed stream puts them back where they were.
  placeLine(node) {
    this.insertAt(this.streamIndex + 0.5, node);
  }

  insertAt(index, node) {
    node.dataset.index = String(index);
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
      card.querySelector(".result-label").hidden = false;
      const steps = m.tool === PLAN_TOOL ? planSteps(m.content) : null;
      if (steps) {
        card.querySelector(".result")?.replaceWith(stepList("result", steps, stepResult));
        this.cardState(m.call_id, m.ok ? "done" : "not all steps finished", m.ok ? "done" : "failed");
      } else {
        const body = m.ok ? m.content : m.error;
        const pre = card.querySelector(".result");
        pre.hidden = false;
        pre.textContent = typeof body === "string" ? body : JSON.stringify(body, null, 2);
        this.cardState(m.call_id, m.ok ? "done" : "failed", m.ok ? "done" : "failed");
      }
      this.rendered.set(index, card);
      if (!card.isConnected) this.place(index, card);
    }
  }

  card(callId, tool, args) {
    const card = el("div", "tool-card");
    card.dataset.callId = callId;
    const head = el("div", "tool-head");
    const steps = tool === PLAN_TOOL ? planSteps(args) : null;
    head.append(el("span", "tool-name", tool), el("span", "tool-state", steps ? "agents working…" : "proposed"));
    let shown;
    if (steps) {
      shown = stepList("args", steps, planStep);
    } else {
      shown = el("pre", "args", args ? JSON.stringify(args, null, 2) : "");
      shown.hidden = !args;
    }
    const label = el("div", "result-label", steps ? "results" : "result");
    label.hidden = true;
    const result = el("pre", "result");
    result.hidden = true;
    card.append(head, shown, label, result);
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
    card.querySelector(".tool-agent")?.remove();
    if (a.agent) {
      // A sub-agent asked: its tool call is in its own conversation, decided here.
      const asker = el("span", "tool-agent", `asked by ${a.agent}`);
      asker.title = a.conversation_id || "";
      card.querySelector(".tool-head").append(asker);
    }
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

  // One line per sub-agent, updated in place as it finishes; a reused result (an
  // identical step done in an earlier plan) gets a line of its own.
  agentProgress(data, state, cls) {
    const reused = data.detail === "reused";
    let line = reused ? null : this.agents.get(data.conversation_id);
    if (!line) {
      line = el("div", "agent-line");
      line.title = data.conversation_id || "";
      const id = data.conversation_id || "";
      // The spaces keep copied (and read-aloud) text apart; the layout ignores them.
      line.append(
        el("span", "agent-name", data.agent || "agent"), " ",
        el("span", "agent-step", id.slice(id.lastIndexOf("~") + 1)), " ",
        el("span", "agent-state"),
      );
      if (!reused) this.agents.set(data.conversation_id, line);
      this.placeLine(line);
    }
    line.querySelector(".agent-state").textContent = state;
    line.classList.remove("running", "done", "failed");
    line.classList.add(cls);
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

// The steps of a `delegate` call's arguments or result, if they look like them.
function planSteps(value) {
  const steps = value && typeof value === "object" ? value.steps : null;
  return Array.isArray(steps) && steps.every((s) => s && typeof s === "object") ? steps : null;
}

function stepList(className, steps, render) {
  const list = el("ol", `plan-steps ${className}`);
  for (const step of steps) list.append(render(step));
  return list;
}

// A planned step: which agent, after which steps, and its instruction.
function planStep(step) {
  const item = el("li");
  const head = el("div", "step-head");
  head.append(el("span", "step-id", String(step.id)), " ", el("span", "agent-name", String(step.goal)));
  const after = Array.isArray(step.depends_on) ? step.depends_on : [];
  if (after.length) head.append(" ", el("span", "step-after", `after ${after.join(", ")}`));
  item.append(head, el("div", "step-text", String(step.instruction ?? "")));
  return item;
}

// A step's outcome and its answer (or what it had done when it stopped).
function stepResult(step) {
  const item = el("li", step.outcome === "finished" ? "done" : "failed");
  const head = el("div", "step-head");
  const state = AGENT_STATES[step.outcome] || String(step.outcome);
  head.append(
    el("span", "step-id", String(step.step_id)), " ",
    el("span", "agent-name", String(step.goal)), " ",
    el("span", "step-outcome", step.reused ? `${state}, reused` : state),
  );
  item.title = step.conversation_id || "";
  item.append(head, el("div", "step-text", String(step.answer || step.partial || "no answer")));
  return item;
}
