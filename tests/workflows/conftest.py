"""Registers the small test goals every workflow test may use."""

from tests.workflows import team_goals, toolbox

assert toolbox.MATH.name == "test-math"
assert team_goals.PLANNER.name == "test-planner"
