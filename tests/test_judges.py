"""The benchmark judges that no brushwork loss optimises (benchmarks/judges.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import judges  # noqa: E402


def test_five_crops_are_the_centre_and_the_four_corners() -> None:
    arr = np.zeros((200, 300, 3), np.uint8)
    arr[:10, :10] = (255, 0, 0)  # top left
    arr[:10, -10:] = (0, 255, 0)  # top right
    arr[-10:, :10] = (0, 0, 255)  # bottom left
    arr[-10:, -10:] = (255, 255, 0)  # bottom right
    crops = judges.five_crops(Image.fromarray(arr))
    assert [c.size for c in crops] == [(256, 256)] * 5
    corner = [tuple(np.asarray(c)[5, 5]) for c in crops[1:3]] + [tuple(np.asarray(c)[250, 5]) for c in crops[3:]]
    assert corner == [(255, 0, 0), (0, 0, 0), (0, 0, 255), (0, 0, 0)]  # squares: left ones only, right ones only
    right = [tuple(np.asarray(c)[5, 250]) for c in crops[1:3]]
    assert right == [(0, 0, 0), (0, 255, 0)]
    assert not np.asarray(crops[0]).any()  # the centre square touches no corner


def test_embedding_score_is_one_for_the_photo_and_zero_for_the_painting(monkeypatch, content_path: Path,
                                                                        style_path: Path) -> None:
    # a stand-in embedding (mean colour and its spread) checks the score's arithmetic without the model
    monkeypatch.setattr(judges, "embedding", lambda img: np.concatenate([np.asarray(img, np.float64).mean((0, 1)),
                                                                        np.asarray(img, np.float64).std((0, 1))]))
    photo = Image.open(content_path).convert("RGB")
    assert judges.embedding_score(photo, photo, style_path) == pytest.approx(1.0)
    square = Image.open(style_path).convert("RGB").resize((300, 300))  # five equal crops: the target itself
    photo = photo.resize((300, 300))
    assert judges.embedding_score(square, photo, square) == pytest.approx(0.0, abs=1e-6)
    assert 0.3 < judges.embedding_score(Image.blend(photo, square, 0.5), photo, square) < 0.7


def test_edge_distance_keeps_structure_and_ignores_fine_texture(content_path: Path, style_path: Path) -> None:
    photo = Image.open(content_path).convert("RGB").resize((256, 170))
    rng = np.random.default_rng(0)
    grain = np.clip(np.asarray(photo, np.float64) + rng.normal(0, 20, (170, 256, 3)), 0, 255).astype(np.uint8)
    assert judges.edge_distance(photo, photo) == pytest.approx(0.0, abs=1e-6)
    textured = judges.edge_distance(Image.fromarray(grain), photo)
    softened = judges.edge_distance(photo.filter(ImageFilter.GaussianBlur(6)), photo)
    other = judges.edge_distance(Image.open(style_path).convert("RGB").resize((256, 170)), photo)
    assert textured < 0.1 < softened < other
    assert other > 0.5


@pytest.mark.skipif(not judges.available(), reason="no embedding model (bash benchmarks/judge_env.sh)")
def test_the_real_embedding_is_100_numbers(style_path: Path) -> None:
    crops = judges.five_crops(Image.open(style_path).convert("RGB"))
    e = judges.embedding(crops[0])
    assert e.shape == (100,) and np.isfinite(e).all()
    assert np.linalg.norm(judges.embedding(crops[1]) - e) > 0


@pytest.mark.skipif(not judges.available(), reason="no embedding model (bash benchmarks/judge_env.sh)")
def test_the_embedding_is_the_quantised_model_s_own_arithmetic(style_path: Path) -> None:
    """Fused int8 kernels give other embeddings on other CPUs (5% of the vector's length on an AMD EPYC); the
    judge runs the model's quantise / dequantise steps as written, in float arithmetic."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = onnxruntime.InferenceSession(str(judges.MODEL), opts, providers=["CPUExecutionProvider"])
    crop = judges.five_crops(Image.open(style_path).convert("RGB"))[0]
    x = np.asarray(crop, np.float32)[None] / 255.0
    expected = plain.run(None, {plain.get_inputs()[0].name: x})[0].reshape(-1)
    assert np.allclose(judges.embedding(crop), expected, rtol=0, atol=1e-5)


def test_quality_benchmark_scores_without_the_embedding_model(tmp_path: Path, shared: Path) -> None:
    env = dict(os.environ, BRUSHWORK_JUDGE_CACHE=str(tmp_path / "none"), OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks/quality.py"), "--size", "48", "--checkpoints", "2",
                          "--preset", "subtle", "--pairs", "chelsea+scream", "--precision", "float32", "--out", str(tmp_path),
                          "--json", str(tmp_path / "q.json")], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "judge_env.sh" in run.stdout
    (row,) = json.loads((tmp_path / "q.json").read_text())
    assert set(row) >= {"content", "style", "edges"} and "embedding" not in row
    assert 0 <= row["edges"] < 0.05  # two steps from the photo: its edges are intact
