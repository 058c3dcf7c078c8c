"""Record the bundled eval set: `python -m onward.evals.record [--out evals/bundled.json]`.

A private embedded server, the offline model and the bundled goals; a scripted user
says what a person would, approves what the agent asks to do, and ends each
conversation when it has nothing more to say. The conversations are then exported as
an eval set. Re-record only for a deliberate change of the goals or the offline model
(`make eval` replays the file and expects no divergence).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from onward.client.conversations import Conversations
from onward.config import Settings
from onward.evals.export import export_conversations
from onward.evals.format import EvalSet, save_eval_set
from onward.evals.local import local_onward

DEFAULT_OUT = Path("evals/bundled.json")


@dataclass(frozen=True)
class Script:
    """A recorded user: the goal and what they say, one message per time they're asked."""

    goal: str
    messages: tuple[str, ...]


SCRIPTS: tuple[Script, ...] = (
    # The Temporal tutorial's script, as its reader types it.
    Script(
        "travel",
        (
            "I'd like to see events in San Francisco in March",
            "I would like to attend the Bay Kite Festival",
            "I would like to order two double cheeseburgers.",
            "I'm sorry. I'd like to depart from Austin, TX",
            "Yes",
            "ada@example.com",
        ),
    ),
    Script(
        "travel",
        (
            "any concerts in Chicago in June?",
            "ok, how about May then",
            "I fly from Denver",
            "yes please, sam@example.org",
        ),
    ),
    Script("purchase", ("Buy 1 MUG-1 with card tok_visa", "1 Main St, Springfield")),
    Script("support", ("I was charged twice on my invoice, please help", "me@example.com")),
    Script("research", ("Research how workflows stay durable",)),
)


async def _play(convs: Conversations, script: Script, deadline: float) -> str:
    cid = await convs.start(script.goal, first_message=script.messages[0])
    said = 1
    await convs.wait_for(cid, lambda s: s.turns >= 1, timeout_s=60)
    while time.monotonic() < deadline:
        snap = await convs.wait_for(
            cid,
            lambda s: s.status in ("waiting_for_user", "waiting_for_approval", "ended"),
            timeout_s=max(1.0, deadline - time.monotonic()),
        )
        if snap.status == "ended":
            return cid
        if snap.pending_approvals:
            for approval in snap.pending_approvals:
                await convs.decide(cid, approval.call_id, "approve", approval.args_hash)
        elif said < len(script.messages):
            await convs.send(cid, script.messages[said])
            said += 1
            # Wait for the agent to take it before looking at the state again.
            await convs.wait_for(cid, lambda s, n=said: s.turns >= n, timeout_s=60)
        else:
            await convs.end(cid, "the recorded user has nothing more to say")
            await convs.result(cid)
            return cid
    raise TimeoutError(f"{script.goal} conversation {cid} did not finish in time")


async def record(scripts: tuple[Script, ...] = SCRIPTS, timeout_s: float = 300) -> EvalSet:
    """Play `scripts` on a private onward with the offline model; the eval set."""
    settings = Settings(_env_file=None, model="offline")  # type: ignore[call-arg]
    async with local_onward(settings) as (client, local):
        convs = Conversations(client, local)
        deadline = time.monotonic() + timeout_s
        ids = [await _play(convs, s, deadline) for s in scripts]
        return await export_conversations(
            client,
            local,
            ids,
            name="bundled",
            description="The bundled goals played by a scripted user with the offline model "
            "(recorded by `python -m onward.evals.record`).",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Record the bundled eval set.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    eval_set = asyncio.run(record())
    save_eval_set(eval_set, args.out)
    print(f"wrote {len(eval_set.cases)} conversations to {args.out}")


if __name__ == "__main__":
    main()
