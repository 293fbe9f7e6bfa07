"""Replays the inputs that made the fuzzers (fuzz/fuzz.py) find bugs: each must now give a result or the
tool's own one-line error. Fast: a few dozen small files, no atheris needed."""

from __future__ import annotations

import importlib.util
import signal
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
spec = importlib.util.spec_from_file_location("brushwork_fuzz", FUZZ / "fuzz.py")
harness = importlib.util.module_from_spec(spec)
spec.loader.exec_module(harness)

LIMIT_S = 10  # per input: the fuzzers' own time limit
CASES = sorted((target.name, path) for target in (FUZZ / "regressions").iterdir() if target.is_dir()
               for path in target.iterdir() if path.is_file())


@pytest.mark.parametrize("target, path", CASES, ids=[f"{t}/{p.name}" for t, p in CASES])
def test_input_that_found_a_bug_keeps_the_contract(target: str, path: Path) -> None:
    if target == "video":
        pytest.importorskip("imageio_ffmpeg")
    def hang(*_):
        raise TimeoutError(f"{path.name} took over {LIMIT_S} s (a hang)")
    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(LIMIT_S)
    try:
        exc = harness.check(target, path.read_bytes())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert exc is None, f"{type(exc).__name__}: {exc}"


def test_every_target_has_a_regression_folder() -> None:
    assert {t for t, _ in CASES} <= set(harness.TARGETS)
    assert len(CASES) >= 8
