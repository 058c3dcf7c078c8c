// A tool call in the transcript: a one-line summary ("Searched flights Austin → San
// Francisco, 2026-03-21: 4 flights"), the details behind a disclosure, links from the
// result outside it, and the approve/reject controls when it waits for a human.
// `delegate` calls (plans for sub-agents) list their steps instead.

import { el } from "./api.js";
import { argsPhrase, render, renderResult, resultLinks, resultPhrase, toolPhrase, words } from "./toolview.js";

export const PLAN_TOOL = "delegate";
export const AGENT_STATES = {
  finished: "finished",
  asked: "needs more information",
  budget_exhausted: "stopped at its budget",
  cancelled: "cancelled",
  failed: "failed",
  ended: "ended",
  reused: "reused (done earlier)",
};

export class ToolCard {
  constructor(callId, tool, args) {
    this.callId = callId;
    this.tool = tool;
    this.args = args;
    this.node = el("div", "tool-card");
    this.node.dataset.callId = callId;
    this.node.dataset.tool = tool;
    this.head = el("div", "tool-head");
    this.summary = el("span", "tool-summary");
    this.state = el("span", "tool-state", "proposed");
    this.head.append(this.summary, " ", this.state);
    this.links = el("div", "tool-links");
    this.links.hidden = true;
    this.details = el("details", "tool-details");
    const toggle = el("summary", null, "Details");
    this.argsBox = el("div", "args");
    this.resultBox = el("div", "result");
    this.details.append(toggle, this.argsBox, this.resultBox);
    this.node.append(this.head, this.links, this.details);
    this.steps = tool === PLAN_TOOL ? planSteps(args) : null;
    this.setArgs(args);
    this.describe(null);
  }

  setArgs(args) {
    this.args = args;
    this.argsBox.replaceChildren();
    if (this.steps) {
      this.argsBox.append(stepList("args", this.steps, planStep));
      this.details.open = true;
    } else if (args && Object.keys(args).length) {
      this.argsBox.append(el("div", "result-label", "arguments"), render(args));
    }
  }

  describe(outcome) {
    const what = `${toolPhrase(this.tool, outcome !== null)} ${argsPhrase(this.args)}`.trim();
    this.summary.textContent = outcome ? `${what}: ${outcome}` : what;
    this.summary.title = words(this.tool);
  }

  setState(text, cls) {
    this.state.textContent = text;
    this.node.classList.remove("pending", "done", "failed");
    if (cls) this.node.classList.add(cls);
  }

  setResult(ok, content, error) {
    this.resultBox.replaceChildren();
    const steps = this.tool === PLAN_TOOL ? planSteps(content) : null;
    if (steps) {
      this.resultBox.append(el("div", "result-label", "results"), stepList("result", steps, stepResult));
      this.describe(ok ? `${steps.length} steps` : "not all steps finished");
      this.setState(ok ? "done" : "not all steps finished", ok ? "done" : "failed");
      return;
    }
    this.resultBox.append(el("div", "result-label", ok ? "result" : "error"));
    this.resultBox.append(ok ? renderResult(content) : el("div", "error-text", String(error ?? "failed")));
    this.describe(resultPhrase(ok, content, error));
    this.setState(ok ? "done" : "failed", ok ? "done" : "failed");
    const links = ok ? resultLinks(content) : [];
    this.links.replaceChildren();
    for (const [key, url] of links) {
      const a = el("a", null, key ? `${words(key.replace(/_?(url|link|href)$/i, "")) || "open"} link` : url);
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.title = url;
      this.links.append(a);
    }
    this.links.hidden = links.length === 0;
  }

  // The approve/reject row; `decide(decision, feedback)` posts it.
  askApproval(agent, conversationId, decide) {
    this.node.querySelector(".approval")?.remove();
    this.node.querySelector(".tool-agent")?.remove();
    if (agent) {
      // A sub-agent asked: its tool call is in its own conversation, decided here.
      const asker = el("span", "tool-agent", `asked by ${agent}`);
      asker.title = conversationId || "";
      this.head.append(asker);
    }
    this.setState("needs your approval", "pending");
    this.details.open = true; // what is to be approved is in plain view
    const row = el("div", "approval");
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", `Approve ${words(this.tool)}?`);
    const feedback = el("input");
    feedback.placeholder = "Feedback for the agent (optional, sent with Reject)";
    feedback.setAttribute("aria-label", "Feedback for the agent");
    const approve = el("button", "approve", "Approve");
    const reject = el("button", "reject", "Reject");
    approve.type = reject.type = "button";
    const run = async (decision) => {
      approve.disabled = reject.disabled = true;
      if (!(await decide(decision, feedback.value || null))) approve.disabled = reject.disabled = false;
    };
    approve.addEventListener("click", () => run("approve"));
    reject.addEventListener("click", () => run("reject"));
    row.append(approve, reject, feedback);
    this.node.append(row);
  }

  decided(decision) {
    this.node.querySelector(".approval")?.remove();
    this.details.open = false;
    const label = { approve: "approved", reject: "rejected", expired: "expired" }[decision] || decision;
    this.setState(label, decision === "approve" ? null : "failed");
  }
}

// The steps of a `delegate` call's arguments or result, if they look like them.
function planSteps(value) {
  const steps = value && typeof value === "object" ? value.steps : null;
  return Array.isArray(steps) && steps.every((s) => s && typeof s === "object") ? steps : null;
}

function stepList(className, steps, renderStep) {
  const list = el("ol", `plan-steps ${className}`);
  for (const step of steps) list.append(renderStep(step));
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
