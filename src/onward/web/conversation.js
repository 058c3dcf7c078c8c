// One open conversation: its transcript, tool cards, approvals and live event stream,
// the messages waiting to be taken (queued), and the progress of the sub-agents it
// delegates to (lines between the messages).
//
// Safety rule: text from the model or a user never reaches innerHTML unescaped. Plain
// text goes through textContent; assistant replies go through renderMarkdown, which
// escapes everything first and only then adds a few fixed tags.

import { $, api, el, showError, usageText } from "./api.js";
import { AGENT_STATES, ToolCard } from "./cards.js";
import { renderMarkdown } from "./markdown.js";

const OFFSET_KEY = "onward.offset.";
const TIMES_KEY = "onward.times.";
const BOTTOM_SLACK_PX = 48;

export class ConversationView {
  /**
   * @param {string} id
   * @param {{goals: Map, vocab: object, onWorker: Function, onStatus: Function,
   *          onFork: Function, announce: Function}} ctx
   */
  constructor(id, ctx) {
    this.id = id;
    this.ctx = ctx;
    this.rendered = new Map(); // transcript index -> element
    this.cards = new Map(); // call id -> ToolCard
    this.pending = new Map(); // call id -> pending approval
    this.queued = new Map(); // message id -> its "queued" bubble
    this.agents = new Map(); // child conversation id -> its progress line
    this.users = []; // [index, text] of the user's messages, in order
    this.streamIndex = -1; // transcript index of the latest message seen on the stream
    const stored = sessionStorage.getItem(OFFSET_KEY + id);
    this.lastOffset = stored === null ? null : Number(stored); // null: from the snapshot
    this.times = JSON.parse(localStorage.getItem(TIMES_KEY + id) || "{}");
    this.source = null;
    this.retry = null;
    this.closed = false;
    this.ended = false;
    this.status = null;
    this.streamKey = null;
    this.streaming = el("div", "message assistant streaming");
    this.streaming.hidden = true;
    $("messages").replaceChildren(this.streaming);
  }

  async open() {
    const detail = await api(`/v1/conversations/${encodeURIComponent(this.id)}`);
    if (this.closed) return detail;
    $("conversation-goal").textContent = detail.goal;
    $("workflow-link").href = detail.links.workflow;
    const goal = this.ctx.goals.get(detail.goal);
    if (goal && goal.starter_prompt) {
      $("messages").insertBefore(el("div", "message intro", goal.starter_prompt), this.streaming);
    }
    detail.messages.forEach((message, i) => this.renderMessage(detail.offset + i, message, false));
    this.streamIndex = detail.offset + detail.messages.length - 1;
    for (const approval of detail.pending_approvals) this.approvalRequested(approval);
    this.setStatus(detail.status, { detail: detail.status_detail });
    $("usage").textContent = usageText(detail.usage);
    this.scroll(true);
    // A tab new to this conversation starts the stream where the snapshot ends:
    // replaying the retained items on top of the transcript would show them twice.
    if (this.lastOffset === null) this.lastOffset = detail.stream_offset ?? -1;
    this.connect();
    return detail;
  }

  close() {
    this.closed = true;
    clearTimeout(this.retry);
    if (this.source) this.source.close();
  }

  // The session cookie authenticates the stream (no token in its URL). EventSource
  // reconnects by itself (sending Last-Event-ID) after a dropped connection; after an
  // HTTP error it gives up, and we reconnect from our offset.
  connect() {
    if (this.closed || this.ended) return;
    const url = `/v1/conversations/${encodeURIComponent(this.id)}/events?after=${this.lastOffset}`;
    const source = new EventSource(url);
    this.source = source;
    for (const name of this.ctx.vocab.event_types) {
      source.addEventListener(name, (e) => this.onEvent(name, e));
    }
    source.addEventListener("delta", (e) => this.onEvent("delta", e));
    source.addEventListener("worker", (e) => this.ctx.onWorker(this.id, JSON.parse(e.data)));
    source.addEventListener("end", () => {
      source.close();
      this.ended = true;
      this.setStatus("ended", {});
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
        return this.renderMessage(data.index, data.message, true);
      case "message_queued": return this.showQueued(data.message_id, data.detail || "", "queued", false);
      case "status": return this.setStatus(data.status, data);
      case "usage": $("usage").textContent = usageText(data.usage); return;
      case "tool_call_started": return this.cards.get(data.call_id)?.setState("running…", null);
      case "tool_call_finished":
        return this.cards.get(data.call_id)?.setState(data.ok ? "done" : "failed", data.ok ? "done" : "failed");
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
    const follow = this.atBottom();
    const key = d.call + "#" + d.attempt; // a retried call starts its text over
    if (key !== this.streamKey) {
      this.streamKey = key;
      this.streaming.textContent = "";
    }
    this.streaming.textContent += d.text;
    this.streaming.hidden = false;
    this.scroll(follow);
  }

  // A message the user sent that the agent has not taken yet: after everything else,
  // marked until the transcript has the message with its id.
  showQueued(messageId, text, mark, mine = false) {
    let bubble = this.queued.get(messageId);
    if (!bubble) {
      if ([...this.rendered.values()].some((n) => n.dataset.messageId === messageId)) return null;
      const follow = this.atBottom();
      bubble = el("div", "message user queued");
      bubble.append(el("div", "text", text), el("span", "queued-mark"));
      $("messages").append(bubble);
      if (messageId) this.queued.set(messageId, bubble);
      this.scroll(follow || mine); // what the user just sent is always brought into view
    }
    bubble.querySelector(".queued-mark").textContent = mark;
    bubble.dataset.mark = mark;
    return bubble;
  }

  rekeyQueued(bubble, messageId) {
    if (this.rendered.size && [...this.rendered.values()].some((n) => n.dataset.messageId === messageId)) {
      bubble.remove(); // the stream was faster than the POST's answer
      return;
    }
    this.queued.set(messageId, bubble);
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
    const follow = this.atBottom();
    node.dataset.index = String(index);
    const box = $("messages");
    const later = [...box.children].find((c) => c.dataset.index !== undefined && Number(c.dataset.index) > index);
    box.insertBefore(node, later || this.streaming);
    this.scroll(follow);
  }

  stamp(index, live) {
    if (live && !this.times[index]) {
      this.times[index] = Date.now();
      localStorage.setItem(TIMES_KEY + this.id, JSON.stringify(this.times));
    }
    const t = this.times[index];
    return t ? new Date(t) : null;
  }

  // Copy, time and (for the user's messages) "fork from here", shown on hover/focus.
  actions(index, text, kind, live) {
    const bar = el("div", "message-actions");
    const when = this.stamp(index, live);
    if (when) {
      const time = el("time", "message-time", when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
      time.dateTime = when.toISOString();
      time.title = when.toLocaleString();
      bar.append(time);
    }
    const copy = el("button", "copy", "Copy");
    copy.type = "button";
    copy.title = "Copy this message";
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(text);
        copy.textContent = "Copied";
        setTimeout(() => { copy.textContent = "Copy"; }, 1500);
      } catch (error) {
        showError(error);
      }
    });
    bar.append(copy);
    if (kind === "user") {
      const fork = el("button", "fork", "Fork from here");
      fork.type = "button";
      fork.title = "Start a new conversation with everything before this message, to send a different one";
      fork.addEventListener("click", () => this.ctx.onFork(this.id, index, text));
      bar.append(fork);
    }
    return bar;
  }

  renderMessage(index, m, live) {
    if (this.rendered.has(index)) return;
    if (m.kind === "user") {
      const node = el("div", "message user");
      node.append(el("div", "text", m.text), this.actions(index, m.text, "user", live));
      if (m.id) {
        node.dataset.messageId = m.id;
        this.queued.get(m.id)?.remove();
        this.queued.delete(m.id);
      }
      this.users.push([index, m.text]);
      this.place(index, node);
    } else if (m.kind === "assistant") {
      const node = el("div", "message assistant");
      const body = el("div", "text");
      body.innerHTML = renderMarkdown(m.text); // escaped first: see renderMarkdown
      node.append(body, this.actions(index, m.text, "assistant", live));
      this.resetStreaming();
      this.place(index, node);
      if (live) this.ctx.announce(m.text);
    } else if (m.kind === "notice") {
      this.place(index, el("div", `message notice ${m.level}`, m.text));
      if (live) this.ctx.announce(m.text);
    } else if (m.kind === "tool_call") {
      const card = this.cards.get(m.call_id) || this.card(m.call_id, m.tool, m.args);
      this.rendered.set(index, card.node);
      if (!card.node.isConnected) this.place(index, card.node);
    } else if (m.kind === "tool_result") {
      const card = this.cards.get(m.call_id) || this.card(m.call_id, m.tool, null);
      card.setResult(m.ok, m.content, m.error);
      this.rendered.set(index, card.node);
      if (!card.node.isConnected) this.place(index, card.node);
    }
  }

  card(callId, tool, args) {
    const card = new ToolCard(callId, tool, args);
    this.cards.set(callId, card);
    return card;
  }

  approvalRequested(a) {
    this.pending.set(a.call_id, a);
    const card = this.cards.get(a.call_id) || this.card(a.call_id, a.tool, a.args);
    if (!card.node.isConnected) $("messages").insertBefore(card.node, this.streaming);
    card.askApproval(a.agent, a.conversation_id, async (decision, feedback) => {
      try {
        await api(`/v1/conversations/${encodeURIComponent(this.id)}/approvals/${encodeURIComponent(a.call_id)}`, {
          method: "POST",
          body: { decision, args_hash: a.args_hash, feedback },
        });
        return true;
      } catch (error) {
        showError(error);
        return false;
      }
    });
    this.updateBadge();
    this.scroll(true);
  }

  approvalDecided(callId, decision) {
    this.pending.delete(callId);
    this.cards.get(callId)?.decided(decision);
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

  setStatus(status, event) {
    this.status = status;
    const node = $("status");
    node.dataset.status = status;
    node.textContent = this.ctx.vocab.status_words[status] || status;
    node.title = event.detail || "";
    clearInterval(this.countdown);
    const words = $("status-words");
    words.textContent = "";
    if (status === "retrying_model") {
      // In words: which attempt, why, and when the next one runs (counting down).
      const due = event.retry_in_s != null ? Date.now() + event.retry_in_s * 1000 : null;
      // The detail's own "retrying in N s" goes stale: its reason is kept, the
      // countdown is ours.
      const detail = event.detail || "";
      const of = /attempt \d+ of \d+/.exec(detail);
      const attempt = of ? of[0] : event.attempt ? `attempt ${event.attempt}` : null;
      const reason = detail.split(";")[0].trim();
      const say = () => {
        const parts = [attempt ? `The model call is being retried (${attempt})` : "The model call is being retried"];
        if (due !== null) parts.push(`next try in ${Math.max(0, Math.ceil((due - Date.now()) / 1000))} s`);
        words.textContent = parts.join(", ") + "." + (reason ? ` ${reason.replace(/\.?$/, ".")}` : "");
      };
      say();
      if (due !== null) this.countdown = setInterval(say, 1000);
    }
    const budget = status === "budget_exhausted";
    $("budget-form").hidden = !budget;
    $("budget-reason").textContent = budget ? event.detail || "The budget is reached." : "";
    const ended = status === "ended";
    $("message-input").disabled = ended;
    $("send-button").disabled = ended;
    if (ended) {
      this.resetStreaming();
      this.pending.clear();
      this.updateBadge();
    }
    this.ctx.onStatus(this);
  }

  busy() {
    return (this.ctx.vocab.busy_statuses || []).includes(this.status);
  }

  lastUserText() {
    const last = this.users[this.users.length - 1];
    return last ? last[1] : null;
  }

  atBottom() {
    const box = $("messages");
    return box.scrollHeight - box.scrollTop - box.clientHeight < BOTTOM_SLACK_PX;
  }

  // Follows new content only when the reader was at the bottom (or `force`).
  scroll(force) {
    if (!force) return;
    const box = $("messages");
    box.scrollTop = box.scrollHeight;
  }
}
