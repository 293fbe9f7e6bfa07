"""Video temporal consistency beyond one previous frame: flow at the input's resolution scaled to the run,
Ruder et al.'s long-term masks, the stacked temporal term, their settings on resume, and the independent
judge's own mask and warping error (benchmarks/flow_judge.py, whose DeepFlow needs opencv-contrib and is
not run here).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("cv2")
pytest.importorskip("imageio_ffmpeg")

from brushwork import video  # noqa: E402
from brushwork.assets import DEMO_STYLE  # noqa: E402
from brushwork.losses import TemporalTerm  # noqa: E402
from brushwork.optimise import Stylizer  # noqa: E402
from test_video import CONFIG, make_clip, textured  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stylizer() -> Stylizer:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Stylizer(CONFIG, device="cpu")
    torch.set_num_threads(before)


def test_flow_found_at_twice_the_size_warps_the_small_frame() -> None:
    big_prev = textured(96, 128)
    big_cur = np.roll(big_prev, (2, 4), axis=(0, 1))  # 4 px right, 2 down at 128x96: 2 and 1 at 64x48
    small_out = textured(48, 64, seed=3)
    target, mask = video._temporal(big_cur, [(big_prev, small_out)], "dis", (64, 48), torch.device("cpu"))
    assert target.shape == (1, 3, 48, 64) and mask.shape == (1, 1, 48, 64)
    got = target[0].permute(1, 2, 0).numpy()
    inner = (slice(8, -8), slice(8, -8))
    expected = np.roll(small_out, (1, 2), axis=(0, 1)).astype(np.float32)
    unshifted = np.abs(small_out.astype(np.float32) - expected)[inner].mean()
    assert np.abs(got - expected)[inner].mean() < 0.1 * unshifted
    assert mask[0, 0][inner].mean() > 0.9


def test_resize_flow_scales_the_vectors() -> None:
    f = np.zeros((96, 128, 2), np.float32)
    f[..., 0], f[..., 1] = 6, -4
    small = video.resize_flow(f, (32, 24))
    assert small.shape == (24, 32, 2)
    assert np.allclose(small[..., 0], 1.5) and np.allclose(small[..., 1], -1.0)
    assert video.resize_flow(f, (128, 96)) is f
    big = video.resize_flow(f, (256, 144))  # enlarged: interpolated, each axis scaled by its own ratio
    assert big.shape == (144, 256, 2)
    assert np.allclose(big[..., 0], 12.0) and np.allclose(big[..., 1], -6.0)


def test_long_term_masks_hold_each_pixel_to_its_most_recent_reliable_frame() -> None:
    cur = textured(48, 64)
    shifted = np.roll(cur, -4, axis=1)  # cur(x) = shifted(x - 4): the left 4 columns come from outside it
    outs = [textured(48, 64, seed=5), textured(48, 64, seed=6)]
    _, masks = video._temporal(cur, [(shifted, outs[0]), (cur.copy(), outs[1])], "dis", (64, 48),
                               torch.device("cpu"))
    recent, older = masks[0, 0].numpy(), masks[1, 0].numpy()
    assert (recent + older).max() <= 1 + 1e-6  # never held twice
    assert recent[:, :4].max() == 0 and older[:, :4].min() == 1  # outside the previous frame: the older one
    assert recent[8:-8, 12:-8].mean() > 0.9 and older[8:-8, 12:-8].max() == 0  # else the most recent


def test_stacked_temporal_term_is_the_sum_of_its_parts() -> None:
    targets = torch.stack([torch.full((3, 4, 4), 100.0), torch.full((3, 4, 4), 50.0)])
    masks = torch.zeros(2, 1, 4, 4)
    masks[0, :, :2] = 1
    masks[1, :, 2:] = 0.5
    image = torch.rand(1, 3, 4, 4) * 255
    both = TemporalTerm(targets, masks)({}, image)
    parts = sum(TemporalTerm(targets[k:k + 1], masks[k:k + 1])({}, image) for k in range(2))
    assert both.item() == pytest.approx(parts.item())


def test_clip_at_twice_the_size_with_long_term_frames_resumes_exactly(tmp_path: Path, stylizer: Stylizer,
                                                                    monkeypatch) -> None:
    clip = make_clip(tmp_path / "big.mp4", frames=6, audio=False, extra=("-vf", "scale=128:96"))
    settings = dict(config=CONFIG, stylizer=stylizer, seed=0, flow_size=None, temporal_frames=(1, 2, 4))
    seen: list[video.FrameDone] = []
    ref = tmp_path / "ref.mp4"
    video.stylize_video(clip, DEMO_STYLE, ref, keep_frames=True, callback=seen.append, **settings)
    assert all(0.5 < f.reliable <= 1 + 1e-6 for f in seen[1:])
    assert video.probe(ref).width == 64  # run at --size, flow at the input's 128x96

    out = tmp_path / "out.mp4"

    def crash(f: video.FrameDone) -> None:
        if f.index == 4:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        video.stylize_video(clip, DEMO_STYLE, out, callback=crash, **settings)
    with pytest.raises(video.VideoError, match="temporal_frames"):  # other history: not mixed
        video.stylize_video(clip, DEMO_STYLE, out, resume=True, **{**settings, "temporal_frames": (1,)})
    video.stylize_video(clip, DEMO_STYLE, out, resume=True, keep_frames=True, **settings)
    for i in range(6):  # frame 5 is held to frames 4 and 1, both read back from the work folder
        name = f"{i:06d}.png"
        assert np.array_equal(np.asarray(Image.open(video.work_folder(out) / name)),
                              np.asarray(Image.open(video.work_folder(ref) / name))), name


def test_temporal_frames_must_include_the_previous_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="include 1"):
        video.stylize_video(tmp_path / "x.mp4", DEMO_STYLE, tmp_path / "o.mp4", temporal_frames=(2, 4))


# --- the independent judge -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def judge():
    spec = importlib.util.spec_from_file_location("flow_judge", ROOT / "benchmarks" / "flow_judge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_judge_trusts_consistent_flow_and_rejects_the_rest(judge) -> None:
    back = np.zeros((48, 64, 2), np.float32)
    back[..., 0] = -3  # frame t(x) = frame t-1(x - 3)
    fore = -back
    mask = judge.reliable(back, fore)
    assert not mask[:, :3].any() and mask[:, 3:].all()  # columns 0-2 came from outside the frame
    wrong = fore.copy()
    wrong[10:20, 30:40] = 0  # forward flow disagrees there: an occlusion
    assert not judge.reliable(back, wrong)[10:20, 33:43].any()


def test_judge_warping_error_is_zero_for_footage_that_follows_the_flow(judge) -> None:
    prev = textured(48, 64).astype(np.uint8)
    cur = np.roll(prev, 3, axis=1)
    back = np.zeros((48, 64, 2), np.float32)
    back[..., 0] = -3
    mask = judge.reliable(back, -back)
    assert judge.warping_error([prev, cur], [(back, mask)]) == [0.0]
    flicker = cur.astype(np.int16) + 10
    assert judge.warping_error([prev, np.clip(flicker, 0, 255).astype(np.uint8)], [(back, mask)])[0] > 5


def test_cli_passes_flow_size_temporal_frames_and_weight(tmp_path: Path, monkeypatch) -> None:
    from brushwork import cli

    seen = {}

    def fake(*args, **kwargs):  # only what the CLI hands over is checked here
        seen.update(kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(video, "stylize_video", fake)
    cli.main(["video", "clip.mp4", "--style", str(DEMO_STYLE), "-o", str(tmp_path / "o.mp4"), "-q",
              "--flow-size", "640", "--temporal-frames", "1,3"])
    assert seen["flow_size"] == 640 and seen["temporal_frames"] == (1, 3)
    cli.main(["video", "clip.mp4", "--style", str(DEMO_STYLE), "-o", str(tmp_path / "o.mp4"), "-q"])
    assert seen["flow_size"] == video.FLOW_SIZE and seen["temporal_frames"] == video.TEMPORAL_FRAMES
    assert seen["temporal_weight"] == video.TEMPORAL_WEIGHT == 0.25  # the judge's choice (README)
