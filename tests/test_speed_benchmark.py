"""The speed benchmark end to end at a tiny size, without neural-style (the figures are its job)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from brushwork.perceptual import pick_precision

ROOT = Path(__file__).resolve().parents[1]


def test_speed_benchmark_writes_its_table(tmp_path: Path) -> None:
    report = tmp_path / "speed.md"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks/speed.py"), "--sizes", "40", "--iterations", "1",
                          "--precisions", "bfloat16", "--device", "cpu", "--skip-ns", "--skip-quality", "--out", str(report)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = [line for line in report.read_text().splitlines() if line.startswith("| 40 |")]
    # the reference loop runs in the automatic precision: float32 on a CPU without bfloat16
    auto = str(pick_precision("auto", torch.device("cpu"))).removeprefix("torch.")
    assert [r.split("|")[2].strip() for r in rows] == ["brushwork bfloat16",
                                                      f"bare VGG16 loop, {auto} (hardware reference)"], run.stderr
    assert all(float(r.split("|")[3]) > 0 for r in rows)
