"""Multi-agent decisions in the model layer (issue #6): the pseudo-tools a provider
model is offered per kind of goal, how their calls map back to decisions, and the
offline and GGUF models' planners, routers and reviewers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_ai.messages import ModelRequest as PaiRequest
from pydantic_ai.messages import ModelResponse as PaiResponse
from pydantic_ai.messages import TextPart, ToolCallPart, ToolReturnPart

from onward.agent.decisions import (
    HANDOFF_TOOL,
    PLAN_TOOL,
    AskUser,
    CallTools,
    Finish,
    Handoff,
    PlanStep,
    Review,
    RunPlan,
)
from onward.agent.messages import (
    AssistantMessage,
    Message,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from onward.agent.plans import decision_problem
from onward.agent.specs import GoalSpec, ToolSpec
from onward.config import Settings
from onward.exceptions import MalformedModelOutput
from onward.models._decisions import to_decision
from onward.models._offline_team import step_count
from onward.models._pai_messages import to_pai_messages
from onward.models._prompts import (
    ToolNames,
    decide_instructions,
    guardrail_instructions,
    review_instructions,
    tool_definitions,
    tool_names,
)
from onward.models.base import ModelRequest
from onward.models.gguf import GgufModel
from onward.models.offline import OfflineModel, check_topic, plan_next
from onward.models.providers import ProviderModel
from onward.testing import FakeOpenAIServer, FakeReply, FakeToolCall

# ---------------------------------------------------------------------- goals


def _tool(name: str, description: str, **props: dict[str, Any]) -> ToolSpec:
    return ToolSpec(
        name=name,
        description=description,
        parameters={"type": "object", "properties": props, "required": list(props)},
    )


VACATION = GoalSpec(
    name="vacation",
    description="Find a holiday trip with flights and a hotel.",
    instructions="Plan one vacation: destination, flights, hotel.",
    tools=[
        _tool(
            "find_trip",
            "Find a trip to a city.",
            city={"type": "string", "examples": ["Lisbon", "Kyoto", "Oslo"]},
        )
    ],
)
BOOKS = GoalSpec(
    name="books",
    description="Recommend novels and other books to read.",
    instructions="Recommend books from the library catalog.",
    tools=[_tool("find_books", "Search the catalog.", genre={"type": "string"})],
)
PLANNER = GoalSpec(
    name="planner",
    description="Plans several things at once.",
    instructions="Delegate to your agents.",
    tools=[],
    agents=[BOOKS, VACATION],
    max_plan_steps=4,
)
ROUTER = GoalSpec(
    name="desk",
    description="Front desk.",
    instructions="Hand the user to the right agent.",
    tools=[],
    agents=[VACATION, BOOKS],
    handoff=True,
)
REVIEWER = GoalSpec(
    name="checker",
    description="Checks drafts.",
    instructions="Reject drafts without flights.",
    tools=[],
)


def response(*parts: TextPart | ToolCallPart) -> PaiResponse:
    return PaiResponse(parts=list(parts))


def call(name: str, args: dict[str, Any] | str, call_id: str = "call_1") -> ToolCallPart:
    return ToolCallPart(tool_name=name, args=args, tool_call_id=call_id)


def plan_result(call_id: str, *steps: dict[str, Any]) -> list[Message]:
    return [
        ToolCallMessage(call_id=call_id, tool=PLAN_TOOL, args={"steps": []}),
        ToolResultMessage(
            call_id=call_id,
            tool=PLAN_TOOL,
            ok=all(s["outcome"] == "finished" for s in steps),
            content={"steps": list(steps)},
        ),
    ]


def step(
    i: int, outcome: str = "finished", answer: str | None = None, partial: str | None = None
) -> dict[str, Any]:
    return {
        "step_id": f"step{i}",
        "goal": "vacation",
        "outcome": outcome,
        "answer": answer,
        "partial": partial,
        "reused": False,
    }


# ---------------------------------------------------------------------- prompts


def test_each_kind_of_goal_is_offered_its_pseudo_tools() -> None:
    assert tool_names(VACATION) == ToolNames(finish="finish", refuse="refuse")
    assert tool_names(PLANNER) == ToolNames(finish="finish", delegate="delegate", refuse="refuse")
    assert tool_names(ROUTER) == ToolNames(finish="finish", handoff="handoff", refuse="refuse")
    quiet = VACATION.model_copy(update={"guardrail": False})
    assert tool_names(quiet) == ToolNames(finish="finish")
    # A review offers the verdict only, whatever the goal.
    assert tool_names(PLANNER, review=True) == ToolNames(finish=None, review="review")
    defined = [t.name for t in tool_definitions(PLANNER, tool_names(PLANNER))]
    assert defined == ["delegate", "finish", "refuse"]
    defined = [t.name for t in tool_definitions(ROUTER, tool_names(ROUTER))]
    assert defined == ["handoff", "finish", "refuse"]


def test_pseudo_tools_avoid_the_goals_own_tool_names() -> None:
    goal = PLANNER.model_copy(
        update={"tools": [_tool("delegate", "Delegate a chore."), _tool("finish", "Polish.")]}
    )
    names = tool_names(goal)
    assert (names.delegate, names.finish) == ("delegate_steps", "finish_goal")
    router = ROUTER.model_copy(update={"tools": [_tool("handoff", "Hand a parcel over.")]})
    assert tool_names(router).handoff == "hand_off"
    # The history keeps the transcript's names; the model is told the offered ones.
    assert "call `delegate_steps`" in decide_instructions(goal, names)


def test_delegate_schema_lists_the_agents_and_caps_the_steps() -> None:
    [delegate, _, _] = tool_definitions(PLANNER, tool_names(PLANNER))
    schema = delegate.parameters_json_schema
    steps = schema["properties"]["steps"]
    assert steps["maxItems"] == 4 and steps["minItems"] == 1
    item = steps["items"]
    assert item["properties"]["goal"]["enum"] == ["books", "vacation"]
    assert item["required"] == ["id", "goal", "instruction"]
    assert item["properties"]["depends_on"]["type"] == "array"
    assert "vacation: Find a holiday trip" in (delegate.description or "")


def test_handoff_schema_is_an_enum_of_agents() -> None:
    [handoff, _, _] = tool_definitions(ROUTER, tool_names(ROUTER))
    props = handoff.parameters_json_schema["properties"]
    assert props["goal"]["enum"] == ["vacation", "books"]
    assert handoff.parameters_json_schema["required"] == ["goal"]


def test_instructions_describe_the_agents_per_kind() -> None:
    planner = decide_instructions(PLANNER, tool_names(PLANNER))
    assert "Agents you can delegate work to:" in planner
    assert "- `vacation`: Find a holiday trip with flights and a hotel." in planner
    assert "call `delegate` with a plan of at most 4 steps" in planner
    assert "reviewer does not approve" in planner
    assert "To run a tool" not in planner  # it has none
    router = decide_instructions(ROUTER, tool_names(ROUTER))
    assert "Agents you can hand the conversation to:" in router
    assert "Call `handoff`" in router and "delegate" not in router
    plain = decide_instructions(VACATION, "finish")  # the older signature still works
    assert "Agents" not in plain and "To run a tool" in plain
    review = review_instructions(REVIEWER)
    assert review.startswith("Reject drafts without flights.")
    assert "call `review` exactly once" in review
    assert "vacation: Find a holiday trip" in guardrail_instructions(PLANNER)


# ---------------------------------------------------------------------- conversion


def test_delegate_call_becomes_a_plan_with_its_call_id() -> None:
    args = {
        "steps": [
            {"id": "a", "goal": "vacation", "instruction": "Trip to Oslo", "depends_on": None},
            {"id": "b", "goal": "books", "instruction": "Books on Oslo", "depends_on": ["a"]},
        ],
        "text": "Asking two agents.",
    }
    decision = to_decision(response(call("delegate", args, "call_9")), tool_names(PLANNER), Usage())
    assert decision == RunPlan(
        call_id="call_9",
        steps=[
            PlanStep(id="a", goal="vacation", instruction="Trip to Oslo"),
            PlanStep(id="b", goal="books", instruction="Books on Oslo", depends_on=["a"]),
        ],
        text="Asking two agents.",
    )
    assert decision_problem(PLANNER, decision, review=False) is None


def test_several_delegate_calls_are_one_plan_and_text_is_its_note() -> None:
    one = {"steps": [{"id": "a", "goal": "vacation", "instruction": "Oslo"}]}
    two = {"steps": [{"id": "b", "goal": "vacation", "instruction": "Kyoto"}]}
    decision = to_decision(
        response(TextPart("Planning."), call("delegate", one, "c1"), call("delegate", two, "c2")),
        tool_names(PLANNER),
        Usage(),
    )
    assert isinstance(decision, RunPlan)
    assert (decision.call_id, [s.id for s in decision.steps]) == ("c1", ["a", "b"])
    assert decision.text == "Planning."


def test_ordinary_tool_calls_run_before_a_plan_or_a_finish() -> None:
    goal = PLANNER.model_copy(update={"tools": VACATION.tools})
    plan = {"steps": [{"id": "a", "goal": "vacation", "instruction": "Oslo"}]}
    decision = to_decision(
        response(
            call("find_trip", {"city": "Oslo"}, "t1"),
            call("delegate", plan, "p1"),
            call("finish", {"answer": "done"}, "f1"),
        ),
        tool_names(goal),
        Usage(),
    )
    assert isinstance(decision, CallTools)
    assert [c.call_id for c in decision.calls] == ["t1"]


def test_a_pseudo_tool_not_offered_is_an_ordinary_call() -> None:
    # A planner calling `handoff` gets it back from the workflow as an unknown tool.
    decision = to_decision(
        response(call("handoff", {"goal": "books"})), tool_names(PLANNER), Usage()
    )
    assert isinstance(decision, CallTools) and decision.calls[0].tool == "handoff"


def test_handoff_call_becomes_a_handoff() -> None:
    names = tool_names(ROUTER)
    decision = to_decision(
        response(call("handoff", {"goal": "books", "text": "Over to books."}, "h1")),
        names,
        Usage(),
    )
    assert decision == Handoff(call_id="h1", goal="books", text="Over to books.")
    same_twice = response(
        call("handoff", {"goal": "books"}, "h1"), call("handoff", {"goal": "books"}, "h2")
    )
    assert to_decision(same_twice, names, Usage()) == Handoff(call_id="h1", goal="books")


def test_finish_still_finishes_a_planner() -> None:
    decision = to_decision(
        response(call("finish", {"answer": " All set. "})), tool_names(PLANNER), Usage()
    )
    assert decision == Finish(answer="All set.")


def test_review_call_becomes_a_review() -> None:
    names = tool_names(REVIEWER, review=True)
    approve = response(call("review", {"approved": True, "feedback": ""}))
    assert to_decision(approve, names, Usage()) == Review(approved=True)
    reject = response(call("review", '{"approved": false, "feedback": "No flight in 2."}'))
    assert to_decision(reject, names, Usage()) == Review(approved=False, feedback="No flight in 2.")
    # Parallel verdicts approve only together.
    both = response(
        call("review", {"approved": True}, "r1"),
        call("review", {"approved": False, "feedback": "Too short."}, "r2"),
    )
    assert to_decision(both, names, Usage()) == Review(approved=False, feedback="Too short.")


@pytest.mark.parametrize(
    ("names", "reply", "message"),
    [
        (tool_names(PLANNER), response(call("delegate", {})), "non-empty `steps` array"),
        (tool_names(PLANNER), response(call("delegate", {"steps": []})), "non-empty `steps`"),
        (tool_names(PLANNER), response(call("delegate", {"steps": ["Oslo"]})), "not an object"),
        (
            tool_names(PLANNER),
            response(call("delegate", {"steps": [{"id": "a", "goal": "vacation"}]})),
            "step 1 of `delegate` is invalid: instruction",
        ),
        (
            tool_names(PLANNER),
            response(call("delegate", {"steps": [{"id": "a b", "goal": "x", "instruction": "y"}]})),
            "step 1 of `delegate` is invalid: id",
        ),
        (tool_names(PLANNER), response(call("delegate", '{"steps": [')), "not valid JSON"),
        (tool_names(ROUTER), response(call("handoff", {"text": "hi"})), "needs `goal`"),
        (
            tool_names(ROUTER),
            response(call("handoff", {"goal": "books"}), call("handoff", {"goal": "vacation"})),
            "one agent only",
        ),
        (
            tool_names(REVIEWER, review=True),
            response(call("review", {"approved": "yes"})),
            "needs `approved`",
        ),
        (
            tool_names(REVIEWER, review=True),
            response(TextPart("Looks fine to me.")),
            "call `review`",
        ),
    ],
)
def test_bad_multi_agent_output_is_malformed(
    names: ToolNames, reply: PaiResponse, message: str
) -> None:
    with pytest.raises(MalformedModelOutput, match=message.replace("`", ".").replace("(", ".")):
        to_decision(reply, names, Usage(requests=1))


def test_plan_and_handoff_history_converts_like_any_tool_call() -> None:
    transcript: list[Message] = [
        UserMessage(text="Two trips please"),
        ToolCallMessage(call_id="p1", tool=PLAN_TOOL, args={"steps": [{"id": "a"}]}),
        ToolResultMessage(
            call_id="p1", tool=PLAN_TOOL, ok=True, content={"steps": [step(1, answer="Oslo")]}
        ),
        NoticeMessage(text="The reviewer did not approve this draft (round 1 of 2): no."),
        ToolCallMessage(call_id="h1", tool=HANDOFF_TOOL, args={"goal": "books"}),
        ToolResultMessage(call_id="h1", tool=HANDOFF_TOOL, ok=True, content="Now with books."),
    ]
    out = to_pai_messages(transcript, "system", None)
    kinds = [type(m).__name__ for m in out]
    assert kinds == [
        "ModelRequest",
        "ModelResponse",
        "ModelRequest",
        "ModelResponse",
        "ModelRequest",
    ]
    plan_call = out[1].parts[0]
    assert isinstance(plan_call, ToolCallPart) and plan_call.tool_name == "delegate"
    first = out[2]
    assert isinstance(first, PaiRequest)
    returned = first.parts[0]
    assert isinstance(returned, ToolReturnPart) and returned.tool_call_id == "p1"
    assert returned.content == {"steps": [step(1, answer="Oslo")]}
    last = out[4]
    assert isinstance(last, PaiRequest) and last.instructions == "system"
    assert isinstance(last.parts[0], ToolReturnPart) and last.parts[0].tool_call_id == "h1"


# ---------------------------------------------------------------------- offline planner


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Plan me three vacations next year", 3),
        ("Plan 2 different trips", 2),
        ("Ten trips please", 4),  # capped at max_plan_steps
        ("Plan a trip to Oslo on May 5", 1),  # a number alone is no count
        ("Plan a trip", 1),
    ],
)
def test_offline_planner_counts_the_options_asked_for(text: str, count: int) -> None:
    assert step_count(text, 4) == count
    decision = plan_next(PLANNER, [UserMessage(text=text)])
    assert isinstance(decision, RunPlan)
    assert len(decision.steps) == count


def test_offline_planner_plans_distinct_steps_for_the_best_agent() -> None:
    decision = plan_next(PLANNER, [UserMessage(text="Plan me three vacations next year")])
    assert isinstance(decision, RunPlan)
    assert decision.call_id == "offline-plan-1"
    assert [s.id for s in decision.steps] == ["step1", "step2", "step3"]
    assert {s.goal for s in decision.steps} == {"vacation"}  # not the first agent, books
    # The open choice (the city) is spread over the options, so each starts elsewhere.
    assert [s.instruction for s in decision.steps] == [
        f"Plan me three vacations next year — option {k} of 3: in {city}; make it different "
        "from the other options (choose a different destination, month or approach)."
        for k, city in enumerate(["Lisbon", "Kyoto", "Oslo"], 1)
    ]
    assert len({s.instruction for s in decision.steps}) == 3
    assert decision_problem(PLANNER, decision, review=False) is None
    one = plan_next(PLANNER, [UserMessage(text="Recommend a novel to read")])
    assert isinstance(one, RunPlan)
    assert one.steps == [
        PlanStep(id="step1", goal="books", instruction="Recommend a novel to read")
    ]
    # Nothing matches: the first agent gets the step.
    other = plan_next(PLANNER, [UserMessage(text="Something unusual")])
    assert isinstance(other, RunPlan) and other.steps[0].goal == "books"


def test_offline_planner_suggests_only_choices_the_request_leaves_open() -> None:
    def instructions(text: str) -> list[str]:
        decision = plan_next(PLANNER, [UserMessage(text=text)])
        assert isinstance(decision, RunPlan)
        return [s.instruction for s in decision.steps]

    # A city named as the destination is the user's choice: no suggestions.
    assert all("— option" in i and ": in " not in i for i in instructions("Two trips to Oslo"))
    # One named as where the trip starts leaves the destination open, and is no option.
    flying = instructions("Two holiday trips flying from Lisbon")
    assert [i.split(";")[0].split(": ")[-1] for i in flying] == ["in Kyoto", "in Oslo"]
    # More options than choices: nothing to spread.
    assert all(": in " not in i for i in instructions("Four holiday trips"))


def test_offline_planner_combines_the_results_one_per_line() -> None:
    messages: list[Message] = [
        UserMessage(text="Plan me three vacations next year"),
        *plan_result(
            "offline-plan-1",
            step(1, answer="A week in Lisbon,\nflight TP123"),
            step(2, "asked", answer="Which month?"),
            step(3, "cancelled", partial="cancelled: the plan's deadline of 60 s passed"),
        ),
    ]
    decision = plan_next(PLANNER, messages)
    assert decision == Finish(
        answer="1. A week in Lisbon, flight TP123\n"
        "2. needs more information: Which month?\n"
        "3. cancelled: the plan's deadline of 60 s passed"
    )


def test_offline_planner_plans_again_after_a_rejection_and_for_a_new_message() -> None:
    first: list[Message] = [
        UserMessage(text="Plan me two vacations"),
        *plan_result("offline-plan-1", step(1, answer="Oslo"), step(2, "failed", partial="x")),
        NoticeMessage(text="The reviewer did not approve this draft (round 1 of 2): redo 2."),
    ]
    again = plan_next(PLANNER, first)
    assert isinstance(again, RunPlan) and again.call_id == "offline-plan-2"
    initial = plan_next(PLANNER, first[:1])
    assert isinstance(initial, RunPlan)
    assert again.steps == initial.steps  # the workflow reuses the finished one
    second = [
        *first,
        *plan_result("offline-plan-2", step(1, answer="Oslo"), step(2, answer="Rome")),
    ]
    assert plan_next(PLANNER, second) == Finish(answer="1. Oslo\n2. Rome")
    # A later user message is a new request: plan for it.
    later = plan_next(PLANNER, [*second, UserMessage(text="Now one trip to Kyoto")])
    assert isinstance(later, RunPlan) and len(later.steps) == 1
    assert later.call_id == "offline-plan-3"


def test_offline_planner_answers_small_talk_with_its_agents() -> None:
    decision = plan_next(PLANNER, [UserMessage(text="Hi there!")])
    assert isinstance(decision, AskUser)
    assert "- vacation: Find a holiday trip" in decision.text


def test_offline_guardrail_of_a_team_knows_its_agents_words() -> None:
    assert check_topic(ROUTER, [], "Recommend some novels").allowed
    assert not check_topic(ROUTER, [], "What is the weather on Mars").allowed


# ---------------------------------------------------------------------- offline router


def test_offline_router_hands_off_to_the_best_match() -> None:
    decision = plan_next(ROUTER, [UserMessage(text="I'd like a holiday in Kyoto")])
    assert decision == Handoff(call_id="offline-handoff-1", goal="vacation")
    assert decision_problem(ROUTER, decision, review=False) is None
    books = plan_next(ROUTER, [UserMessage(text="Any good novels?")])
    assert isinstance(books, Handoff) and books.goal == "books"


def test_offline_router_asks_when_nothing_matches_then_follows_the_answer() -> None:
    question = plan_next(ROUTER, [UserMessage(text="Hello, can you help me?")])
    assert isinstance(question, AskUser)
    assert "- vacation: Find a holiday trip" in question.text
    assert "- books: Recommend novels" in question.text
    answer = plan_next(
        ROUTER,
        [
            UserMessage(text="Hello, can you help me?"),
            AssistantMessage(text=question.text),
            UserMessage(text="books"),
        ],
    )
    assert answer == Handoff(call_id="offline-handoff-1", goal="books")


def test_agent_handed_the_conversation_ignores_the_handoff_entries() -> None:
    messages: list[Message] = [
        UserMessage(text="A trip to Oslo please"),
        ToolCallMessage(call_id="offline-handoff-1", tool=HANDOFF_TOOL, args={"goal": "vacation"}),
        ToolResultMessage(
            call_id="offline-handoff-1", tool=HANDOFF_TOOL, ok=True, content="Now with vacation."
        ),
    ]
    decision = plan_next(VACATION, messages)
    assert isinstance(decision, CallTools)
    assert [(c.tool, c.args) for c in decision.calls] == [("find_trip", {"city": "Oslo"})]


# ---------------------------------------------------------------------- offline reviewer


def review(draft: str | None) -> Any:
    messages: list[Message] = [UserMessage(text="Plan two trips")]
    if draft is not None:
        messages.append(AssistantMessage(text=draft))
    return plan_next(REVIEWER, messages, review=True)


def test_offline_reviewer_approves_a_complete_draft() -> None:
    assert review("1. Oslo in May, flight NS100\n2. Rome in June, flight MJ200") == Review(
        approved=True
    )


@pytest.mark.parametrize(
    ("draft", "named"),
    [
        ("", "empty"),
        (None, "empty"),
        ("1. Oslo\n2. I could not find a flight to Rome", "could not find a flight to Rome"),
        ("1. failed: no airport", "failed: no airport"),
        ("1. Oslo\n2. cancelled: the plan's deadline passed", "cancelled: the plan"),
    ],
)
def test_offline_reviewer_rejects_empty_or_failed_drafts(draft: str | None, named: str) -> None:
    verdict = review(draft)
    assert isinstance(verdict, Review) and not verdict.approved
    assert verdict.feedback and named in verdict.feedback
    assert "Oslo" not in verdict.feedback  # only the lines with the problem are named


async def test_offline_model_reviews_and_plans_through_decide() -> None:
    model = OfflineModel()
    request = ModelRequest(
        conversation_id="c",
        goal=REVIEWER,
        messages=[UserMessage(text="x"), AssistantMessage(text="All good.")],
        review=True,
    )
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    reviewed = await model.decide(request, on_delta)
    assert reviewed.decision == Review(approved=True)
    assert deltas == []  # a verdict is not shown to the user
    planned = await model.decide(
        ModelRequest(conversation_id="c", goal=PLANNER, messages=[UserMessage(text="two trips")])
    )
    assert isinstance(planned.decision, RunPlan) and planned.usage.cost_usd == 0.0


# ---------------------------------------------------------------------- gguf


class NoLlama:
    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("a review must not reach the local model")


async def test_gguf_model_approves_reviews_without_generating() -> None:
    model = GgufModel("/models/small.gguf", llama=NoLlama())
    request = ModelRequest(
        conversation_id="c",
        goal=REVIEWER,
        messages=[UserMessage(text="x"), AssistantMessage(text="draft")],
        review=True,
    )
    result = await model.decide(request)
    assert result.decision == Review(approved=True)
    assert result.usage.requests == 0 and result.model_name == "gguf:small.gguf"


# ---------------------------------------------------------------------- provider


async def test_provider_delegate_call_is_a_plan_and_review_call_a_review(
    fake_openai: FakeOpenAIServer,
) -> None:
    """Over real HTTP: the planner is offered `delegate` (its steps' goals an enum of
    the agents), its call becomes a `RunPlan`; a review request offers only `review`,
    is not streamed, and its call becomes a `Review`."""
    plan = {
        "steps": [
            {"id": "oslo", "goal": "vacation", "instruction": "A trip to Oslo in May"},
            {
                "id": "read",
                "goal": "books",
                "instruction": "Books about Oslo",
                "depends_on": ["oslo"],
            },
        ]
    }
    fake_openai.enqueue(
        FakeReply(
            text="Asking my agents.", tool_calls=[FakeToolCall("delegate", plan, id="call_p")]
        ),
        FakeReply(
            tool_calls=[
                FakeToolCall("review", {"approved": False, "feedback": "Option 1 has no flight."})
            ]
        ),
    )
    settings = Settings(
        _env_file=None,  # pyright: ignore[reportCallIssue]
        model="openai:gpt-4o-mini",
        openai_base_url=fake_openai.base_url,
    )
    model = ProviderModel(settings.model, settings)
    transcript: list[Message] = [UserMessage(text="Plan a trip to Oslo and something to read")]

    planned = await model.decide(
        ModelRequest(conversation_id="c", goal=PLANNER, messages=transcript)
    )
    assert planned.decision == RunPlan(
        call_id="call_p",
        steps=[
            PlanStep(id="oslo", goal="vacation", instruction="A trip to Oslo in May"),
            PlanStep(id="read", goal="books", instruction="Books about Oslo", depends_on=["oslo"]),
        ],
        text="Asking my agents.",
    )
    body = fake_openai.requests[0]
    assert body["stream"] is True
    tools = {t["function"]["name"]: t["function"] for t in body["tools"]}
    assert set(tools) == {"delegate", "finish", "refuse"}
    step_schema = tools["delegate"]["parameters"]["properties"]["steps"]["items"]
    assert step_schema["properties"]["goal"]["enum"] == ["books", "vacation"]
    assert "Agents you can delegate work to:" in body["messages"][0]["content"]

    draft = AssistantMessage(text="1. Oslo in May\n2. A book about Oslo")
    reviewed = await model.decide(
        ModelRequest(conversation_id="c", goal=REVIEWER, messages=[*transcript, draft], review=True)
    )
    assert reviewed.decision == Review(approved=False, feedback="Option 1 has no flight.")
    assert reviewed.usage.requests == 1
    body = fake_openai.requests[1]
    assert not body.get("stream")
    assert [t["function"]["name"] for t in body["tools"]] == ["review"]
    assert body["tool_choice"] == "required"
    sent = body["messages"]
    assert sent[0]["role"] == "system" and "call `review` exactly once" in sent[0]["content"]
    assert sent[-2] == {"role": "assistant", "content": draft.text}
    assert sent[-1]["role"] == "user" and "Review the draft above" in sent[-1]["content"]
