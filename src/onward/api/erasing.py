"""The old name of `onward.api.erasure`, kept only for the conversations router's import
line (`from onward.api.erasing import EraserDep`): delete it once that line names
`onward.api.erasure`."""

from onward.api.erasure import EraserDep

__all__ = ["EraserDep"]
