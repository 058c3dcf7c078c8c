"""Registers the small test goals every workflow test may use."""

from tests.workflows import toolbox

assert toolbox.MATH.name == "test-math"
