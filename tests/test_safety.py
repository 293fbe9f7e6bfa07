"""Never lose a user's file: no output over an input, ranges for every number, a memory check before a
run, and clear messages with no partial files when the disk is full or the folder read-only."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from brushwork import cli, images, memory, optimise, presets
from brushwork.cli import main
from brushwork.errors import BrushworkError, OptionError

FAST = ["--size", "40", "--iterations", "2", "--precision", "float32", "-q"]


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if a run gets as far as building the network."""
    def refuse(*a, **k):
        raise AssertionError("the run started computing")
    monkeypatch.setattr(optimise.Stylizer, "__init__", refuse)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# --- never write over an input ---------------------------------------------------------------------

@pytest.mark.parametrize("role", ["content", "style", "init", "weights"])
@pytest.mark.parametrize("spelling", ["same", "dot-slash", "symlink", "hardlink"])
def test_output_over_an_input_is_refused_before_any_work(tmp_path, content_path, style_path, monkeypatch,
                                                         capsys, no_compute, role, spelling) -> None:
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "mine.png"  # the user's file, in the role under test
    source = {"content": content_path, "style": style_path, "init": content_path,
              "weights": Path(__file__).parents[1] / "src/brushwork/assets/vgg16-caffe.safetensors"}[role]
    mine.write_bytes(source.read_bytes())  # a weights file is read by content, whatever its name
    before = mine.read_bytes()
    output = {"same": "mine.png", "dot-slash": "./mine.png", "symlink": "link.png", "hardlink": "hard.png"}[spelling]
    if spelling == "symlink":
        os.symlink(mine, tmp_path / "link.png")
    elif spelling == "hardlink":
        os.link(mine, tmp_path / "hard.png")
    content, style, extra = str(content_path), str(style_path), []
    if role == "content":
        content = "mine.png"
    elif role == "style":
        style = "mine.png"
    else:
        extra = [f"--{role}", "mine.png"]
    code = main(["stylize", content, "--style", style, "-o", output, *FAST, *extra])
    assert code == 1
    assert "is also an input of this run" in one_error_line(capsys)
    assert mine.read_bytes() == before


def test_overwrite_flag_allows_replacing_an_input(tmp_path, content_path, style_path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(content_path.read_bytes())
    assert main(["stylize", str(photo), "--style", str(style_path), "-o", str(photo), *FAST, "--overwrite"]) == 0
    assert Image.open(photo).size == (40, 27)  # the result, as asked


def test_snapshot_over_an_input_is_refused(tmp_path, content_path, style_path, capsys, no_compute) -> None:
    photo = tmp_path / "out.00002.png"
    photo.write_bytes(content_path.read_bytes())
    code = main(["stylize", str(photo), "--style", str(style_path), "-o", str(tmp_path / "out.png"), *FAST,
                 "--snapshot-every", "2"])
    assert code == 1 and "out.00002.png: is also an input" in one_error_line(capsys)
    assert photo.read_bytes() == content_path.read_bytes()


def test_video_output_over_its_input_is_refused_before_probing(tmp_path, monkeypatch) -> None:
    pytest.importorskip("imageio_ffmpeg")
    from brushwork import video
    from brushwork.assets import DEMO_STYLE

    monkeypatch.setattr(video, "probe", lambda *a, **k: pytest.fail("probed the input"))
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"the user's video")
    with pytest.raises(images.ImageError, match="is also an input"):
        video.stylize_video(clip, DEMO_STYLE, tmp_path / "." / "clip.mp4")
    frames = tmp_path / "out.mp4.frames"  # a folder of frames that is also the work folder (deleted at the end)
    frames.mkdir()
    (frames / "000000.png").write_bytes(b"a frame")
    with pytest.raises(video.VideoError, match="inside .*work folder"):
        video.stylize_video(frames, DEMO_STYLE, tmp_path / "out.mp4", resume=True)
    assert clip.read_bytes() == b"the user's video" and (frames / "000000.png").exists()


# --- ranges ----------------------------------------------------------------------------------------

BAD = [("--size", "0"), ("--size", "-5"), ("--size", "15"), ("--size", "abc"), ("--iterations", "0"),
       ("--iterations", "-3"), ("--content-weight", "-1"), ("--style-weight", "nan"), ("--tv-weight", "inf"),
       ("--lr", "0"), ("--history", "0"), ("--style-scale", "0"), ("--pyramid", "0.5,1.5"),
       ("--pyramid-iterations", "3,-1"), ("--pyramid-px", "-1"), ("--style-layer-weights", "1,-2"), ("--seed", "-1"),
       ("--style-blend", "1,-1"), ("--snapshot-every", "-2")]
VIDEO_BAD = [("--temporal-weight", "-1"), ("--later-iterations", "0"), ("--max-frames", "0"), ("--fps", "0"),
             ("--fps", "-25")]


@pytest.mark.parametrize("flag, value", BAD + VIDEO_BAD)
def test_every_numeric_option_has_a_range(flag, value, capsys, no_compute) -> None:
    command = ["video", "in.mp4"] if (flag, value) in VIDEO_BAD else ["stylize", "in.png"]
    with pytest.raises(SystemExit) as exit:
        main([*command, "--style", "s.png", f"{flag}={value}"])
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    line = err[-1]  # argparse's usage summary, then one line saying what is wrong
    assert err[0].startswith("usage:") and sum("error" in e for e in err) == 1
    assert f"error: argument {flag}: must be" in line


def test_no_numeric_option_bypasses_the_ranges() -> None:
    """Every option that takes a number goes through presets.RANGES (a new plain `type=int` fails here)."""
    def actions(p):
        for a in p._actions:
            if a.choices and isinstance(a.choices, dict):  # subcommands
                for sub in a.choices.values():
                    yield from actions(sub)
            else:
                yield a
    for action in actions(cli.parser()):
        assert action.type not in (int, float), action.option_strings
        if action.type is not None and getattr(action.type, "__name__", "") != "<lambda>":
            assert action.type.__name__ in presets.RANGES, action.option_strings


@pytest.mark.parametrize("field, value", [("size", 0), ("iterations", -3), ("iterations", 0), ("lr", 0.0),
                                          ("history", 0), ("pyramid", (0.5, 2.0)), ("style_weight", float("nan")),
                                          ("size", 2.5), ("style_scale", -1.0)])
def test_config_refuses_nonsense(field, value) -> None:
    with pytest.raises(OptionError, match=f"{field} must be"):
        presets.DEFAULT.with_(**{field: value})


def test_edge_values_are_accepted() -> None:
    """The smallest sensible values pass both the parser and Config."""
    args = cli.parser().parse_args(["stylize", "a.png", "-s", "b.png", "--size", "16", "--iterations", "1",
                                    "--content-weight", "0", "--pyramid", "1", "--seed", "0"])
    assert cli._config(args).size == 16


def test_video_api_checks_its_ranges_before_probing(tmp_path, monkeypatch) -> None:
    pytest.importorskip("imageio_ffmpeg")
    from brushwork import video
    from brushwork.assets import DEMO_STYLE

    monkeypatch.setattr(video, "probe", lambda *a, **k: pytest.fail("probed the input"))
    for kw in ({"max_frames": 0}, {"fps": 0.0}, {"later_iterations": -1}, {"temporal_weight": -0.5}):
        with pytest.raises(OptionError):
            video.stylize_video(tmp_path / "in.mp4", DEMO_STYLE, tmp_path / "out.mp4", **kw)


# --- memory ----------------------------------------------------------------------------------------

def test_a_size_that_cannot_fit_stops_at_once_with_one_that_does(tmp_path, content_path, style_path,
                                                                  monkeypatch, capsys) -> None:
    """Too large even in tiles (the full-size buffers alone): stopped before optimising, naming a size
    whose tiled plan fits."""
    import torch
    from brushwork import tiles
    monkeypatch.setattr(optimise.Stylizer, "_optimise", lambda *a: pytest.fail("started optimising"))
    monkeypatch.setattr(memory, "available", lambda: 4_000_000_000)
    monkeypatch.setattr(memory, "resident", lambda: 300_000_000)
    out = tmp_path / "out.png"
    code = main(["stylize", str(content_path), "--style", str(style_path), "-o", str(out), "--size", "200000",
                 "--precision", "float32", "-q"])
    line = one_error_line(capsys)
    assert code == 1 and "needs about" in line and "4000 MB is free" in line and not out.exists()
    fits = int(line.split("--size ")[1].split()[0])
    assert 4096 < fits < 200000
    config, limit = presets.DEFAULT.with_(precision="float32"), memory.budget(torch.device("cpu"))
    tiles.choose(*images.fit_size(Image.open(content_path).size, fits), config, torch.float32, limit)  # fits
    with pytest.raises(memory.MemoryLimitError):
        tiles.choose(*images.fit_size(Image.open(content_path).size, fits + 50), config, torch.float32, limit)


def test_largest_side_is_the_largest_that_fits() -> None:
    import torch
    config = presets.DEFAULT
    budget = memory.estimate(1000, 750, config, torch.bfloat16)
    side = memory.largest_side(4000, 3000, config, torch.bfloat16, budget)
    assert side == 1000
    assert memory.estimate(4000 * 1001 // 4000, 3000 * 1001 // 4000, config, torch.bfloat16) > budget


def test_estimate_grows_with_pixels_history_and_style_scale() -> None:
    import torch
    e = lambda **kw: memory.estimate(512, 512, presets.DEFAULT.with_(**kw), torch.float32)  # noqa: E731
    assert e() < e(history=40) and e() < e(style_scale=3.0)
    assert memory.estimate(256, 256, presets.DEFAULT, torch.float32) < e()
    # the default's histogram term: its matched relu1_1 values (float32) and the gradient kept for the backward
    # pass, 64 channels x (4 + 4 or 2) bytes a pixel (measured at 1024 px in bfloat16: +0.19 GiB; estimated 0.38)
    assert presets.DEFAULT.histogram_weight and e() - e(histogram_weight=0.0) == 64 * 8 * 512 * 512
    b = lambda **kw: memory.estimate(512, 512, presets.DEFAULT.with_(**kw), torch.bfloat16)  # noqa: E731
    assert b() - b(histogram_weight=0.0) == 64 * 6 * 512 * 512
    assert memory.estimate(512, 512, presets.DEFAULT, torch.float32, regions=2) == memory.estimate(
        512, 512, presets.DEFAULT.with_(histogram_weight=0.0), torch.float32, regions=2)  # regions go without it


def test_memory_check_names_a_size_that_fits(monkeypatch) -> None:
    import torch
    monkeypatch.setattr(memory, "available", lambda: 1_000_000_000)
    monkeypatch.setattr(memory, "resident", lambda: 300_000_000)
    with pytest.raises(memory.MemoryLimitError, match=r"--size \d+ fits") as err:
        memory.check(8000, 6000, presets.DEFAULT, torch.float32, torch.device("cpu"))
    assert isinstance(err.value, BrushworkError)
    memory.check(64, 48, presets.DEFAULT, torch.float32, torch.device("cpu"))  # small runs pass


def test_a_video_on_cuda_is_checked_against_the_gpus_free_memory(monkeypatch) -> None:
    """Video frames are never tiled, so a CUDA run is checked up front too, without --max-memory."""
    import torch
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (200_000_000, 80_000_000_000))
    with pytest.raises(memory.MemoryLimitError, match="of GPU memory is free"):
        memory.check(2000, 1500, presets.DEFAULT, torch.float32, torch.device("cuda"))
    memory.check(64, 48, presets.DEFAULT, torch.float32, torch.device("cuda"))


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_a_cgroup_limit_counts_as_the_memory_left(tmp_path, monkeypatch, version) -> None:
    """In a container MemAvailable shows the host's memory; the cgroup's limit is what the kernel enforces."""
    hierarchy, limit, usage, cache = memory.CGROUP_FILES[version == "v1"]
    proc = tmp_path / "cgroup"
    proc.write_text("0::/\n" if version == "v2" else "4:memory:/\n1:cpu:/\n")
    root = tmp_path / "fs"
    (root / hierarchy).mkdir(parents=True)
    (root / hierarchy / limit).write_text("2000000000\n")
    (root / hierarchy / usage).write_text("500000000\n")
    assert memory.cgroup_free(root, proc) == 1_500_000_000
    monkeypatch.setattr(memory, "CGROUP", root)
    monkeypatch.setattr(memory, "PROC_CGROUP", proc)
    monkeypatch.setattr(memory, "_meminfo", lambda field, path="": 64_000_000_000)
    assert memory.available() == 1_500_000_000
    (root / hierarchy / limit).write_text("max\n")  # v2's "no limit"
    assert memory.cgroup_free(root, proc) is None and memory.available() == 64_000_000_000


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_a_cgroup_is_found_from_proc_and_its_page_cache_is_free(tmp_path, version) -> None:
    """The usage counts page cache the kernel drops before it kills: its inactive part is free. The process's
    own cgroup is the one /proc/self/cgroup names, under every limit above it."""
    hierarchy, limit, usage, cache = memory.CGROUP_FILES[version == "v1"]
    proc = tmp_path / "cgroup"
    proc.write_text("0::/jobs/run7\n" if version == "v2" else "9:cpu,cpuacct:/x\n4:memory:/jobs/run7\n")
    root = tmp_path / "fs"
    own = root / hierarchy / "jobs/run7"
    own.mkdir(parents=True)
    (own / limit).write_text("3000000000\n")
    (own / usage).write_text("2500000000\n")
    (own / "memory.stat").write_text(f"active_file 100\n{cache} 1000000000\nother 5\n")
    assert memory.cgroup_free(root, proc) == 1_500_000_000  # 3 GB - (2.5 GB - 1 GB of cache)
    (root / hierarchy / "jobs" / limit).write_text("1800000000\n")  # a tighter limit one level up
    (root / hierarchy / "jobs" / usage).write_text("1000000000\n")
    assert memory.cgroup_free(root, proc) == 800_000_000


@pytest.mark.parametrize("text, expected", [("8G", 8e9), ("8gb", 8e9), ("1500M", 1.5e9), ("512MiB", 2**29),
                                            ("2", 2e9), ("0.5G", 5e8), ("8B", 8), ("2000000000b", 2e9)])
def test_max_memory_sizes(text, expected) -> None:
    assert memory.parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "0", "-1G", "8X", "", "8iB"])
def test_a_bad_max_memory_is_a_usage_error(text, tmp_path, content_path, style_path, capsys, no_compute) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["stylize", str(content_path), "--style", str(style_path), "-o", str(tmp_path / "o.png"),
              "--max-memory", text])
    assert exit_.value.code == 2 and "--max-memory" in capsys.readouterr().err


def test_a_need_just_over_the_cap_reads_larger_than_it() -> None:
    """At 0.1 GB steps a need of 412 MB and a cap of 410 MB both read "0.4 GB"."""
    import torch
    config = presets.DEFAULT.with_(size=128, precision="float32")
    need = memory.estimate(128, 128, config, torch.float32)
    limit = memory.budget(torch.device("cpu"), need - 2_000_000)
    line = str(memory.refuse("a 128x128 run", need, limit, 120))
    assert f"needs about {need / 1e6:.0f} MB" in line and f"allows {(need - 2e6) / 1e6:.0f} MB" in line
    assert "2130.0 GB" in memory.show(2.13e12)


@pytest.mark.parametrize("option", [["--resume"], ["--max-memory", "2G"]])
def test_optimiser_options_are_refused_with_a_model(tmp_path, content_path, option, capsys) -> None:
    """A trained network's one pass neither tiles nor resumes: the option is refused, not silently ignored."""
    out = tmp_path / "out.png"
    assert main(["stylize", str(content_path), "--model", "starry", "-o", str(out), *option]) == 1
    line = one_error_line(capsys)
    assert option[0] in line and "--model" in line and not out.exists()


def test_max_memory_below_the_smallest_tile_stops_at_once(tmp_path, content_path, style_path, monkeypatch,
                                                          capsys) -> None:
    """0.5 GB is less than the network and a smallest tile: the cap, not the machine, stops the run."""
    import torch
    from brushwork import tiles
    monkeypatch.setattr(optimise.Stylizer, "_optimise", lambda *a: pytest.fail("started optimising"))
    out = tmp_path / "out.png"
    code = main(["stylize", str(content_path), "--style", str(style_path), "-o", str(out), "--size", "2000",
                 "--max-memory", "0.5G", "--precision", "float32", "-q"])
    line = one_error_line(capsys)
    assert code == 1 and "--max-memory allows 500 MB" in line and "raise --max-memory" in line and not out.exists()
    fits = int(line.split("--size ")[1].split()[0])
    limit = memory.budget(torch.device("cpu"), 500_000_000)
    config = presets.DEFAULT.with_(precision="float32")
    tiles.choose(*images.fit_size(Image.open(content_path).size, fits), config, torch.float32, limit)  # fits (tiled)


def test_a_video_too_large_stops_before_the_network_loads(tmp_path, content_path, style_path, capsys,
                                                         no_compute) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        Image.open(content_path).save(frames / f"{i:04d}.png")
    out = tmp_path / "out.mp4"
    code = main(["video", str(frames), "--style", str(style_path), "-o", str(out), "--size", "4000",
                 "--max-memory", "2G", "--precision", "float32", "-q"])
    line = one_error_line(capsys)
    assert code == 1 and "needs about" in line and "--size" in line and not out.exists()


def test_a_batch_counts_every_worker_before_starting_them(tmp_path, content_path, style_path, capsys,
                                                         monkeypatch) -> None:
    """One 600 px run fits in 1.5 GB, three workers' shares of it (500 MB each) do not: stopped before any
    worker starts."""
    from brushwork import batch
    monkeypatch.setattr(batch, "Engine", lambda *a: pytest.fail("a worker started"))
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in "abc":
        Image.open(content_path).save(photos / f"{name}.png")
    args = ["batch", str(photos), "--style", str(style_path), "-o", str(tmp_path / "out"), "--size", "600",
            "--precision", "float32", "--max-memory", "1.5G", "-q"]
    assert main([*args, "--workers", "3"]) == 1
    line = one_error_line(capsys)
    assert "shared by 3 workers" in line and "fewer --workers" in line
    import torch
    assert memory.estimate(600, 400, presets.DEFAULT.with_(precision="float32"), torch.float32) < 1.5e9


# --- disk full, read-only folders ------------------------------------------------------------------

def fail_first_save(monkeypatch, code: int) -> None:
    """The first image write fails part-way with `code` (as a full disk does); later writes work."""
    real, calls = Image.Image.save, []

    def save(self, fp, *a, **k):
        calls.append(fp)
        if len(calls) == 1:
            fp.write(b"\x89PNG half an image")
            raise OSError(code, os.strerror(code))
        return real(self, fp, *a, **k)
    monkeypatch.setattr(Image.Image, "save", save)


@pytest.mark.parametrize("code, advice", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only"),
                                          (errno.EDQUOT, "quota")])
def test_a_failed_save_keeps_the_result_and_the_earlier_file(tmp_path, content_path, style_path, monkeypatch,
                                                            capsys, code, advice) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"yesterday's result")
    fail_first_save(monkeypatch, code)
    assert main(["stylize", str(content_path), "--style", str(style_path), "-o", str(out), *FAST]) == 1
    line = one_error_line(capsys)
    assert line.startswith(f"brushwork: error: {out}: could not be written") and advice in line
    fallback = Path(line.split("saved to ")[1].split(" instead")[0])
    try:
        assert Image.open(fallback).size == (40, 27)  # the finished work, kept
    finally:
        fallback.unlink()
    assert out.read_bytes() == b"yesterday's result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no partial file


def test_video_disk_full_keeps_finished_frames(tmp_path, monkeypatch) -> None:
    pytest.importorskip("cv2")
    pytest.importorskip("imageio_ffmpeg")
    from brushwork import video
    from brushwork.assets import DEMO_STYLE
    from test_video import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=3, audio=False)
    out = tmp_path / "out.mp4"
    real, saved = images.save, []

    def save(img, path):
        if len(saved) == 2:
            raise images.write_error(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        saved.append(path)
        return real(img, path)
    monkeypatch.setattr(images, "save", save)
    config = presets.DEFAULT.with_(size=32, iterations=1, precision="float32")
    with pytest.raises(video.VideoError, match="disk is full.*2 finished frames are kept.*--resume"):
        video.stylize_video(clip, DEMO_STYLE, out, config=config, seed=0)
    work = video.work_folder(out)
    assert sorted(p.name for p in work.iterdir()) == ["000000.png", "000001.png", "manifest.json"]
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.fixture
def mount_tmpfs(tmp_path):
    """Mount a small tmpfs (root only; skipped where mounting is not permitted)."""
    mounted = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        run = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if run.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {run.stderr.decode().strip() or run.returncode}")
        mounted.append(point)
        return point
    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=False)


def test_really_full_disk(tmp_path, content_path, style_path, mount_tmpfs, capsys) -> None:
    disk = mount_tmpfs("size=64k")
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        with pytest.raises(OSError) as full:
            while True:
                f.write(b"\0" * 4096)
    assert full.value.errno == errno.ENOSPC
    out = disk / "out.png"
    assert main(["stylize", str(content_path), "--style", str(style_path), "-o", str(out), *FAST]) == 1
    line = one_error_line(capsys)
    assert "disk is full" in line and "saved to" in line
    Path(line.split("saved to ")[1].split(" instead")[0]).unlink()
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_read_only_output_folder(tmp_path, content_path, style_path, mount_tmpfs, capsys, no_compute) -> None:
    if os.geteuid() == 0:
        folder = mount_tmpfs("ro,size=64k")  # root ignores permission bits: a read-only file system
    else:
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o555)
    code = main(["stylize", str(content_path), "--style", str(style_path), "-o", str(folder / "o.png"), *FAST])
    assert code == 1 and "not writable" in one_error_line(capsys)
    assert not list(folder.iterdir())


# --- a video run killed at the worst moments -------------------------------------------------------

KILL_AT_MANIFEST = """
import os, signal, sys
from brushwork import presets, video
from brushwork.assets import DEMO_STYLE
real = os.replace
def replace(src, dst, *a, **k):
    if str(dst).endswith("manifest.json"):  # SIGKILL as the manifest is put in place
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *a, **k)
video.os.replace = replace
video.stylize_video(sys.argv[1], DEMO_STYLE, sys.argv[2], resume=True,
                    config=presets.DEFAULT.with_(size=32, iterations=1, precision="float32"), seed=0)
"""


def test_killed_while_creating_the_work_folder_resumes(tmp_path) -> None:
    pytest.importorskip("cv2")
    pytest.importorskip("imageio_ffmpeg")
    import sys

    from brushwork import video
    from brushwork.assets import DEMO_STYLE
    from test_video import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=False)
    out = tmp_path / "out.mp4"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", KILL_AT_MANIFEST, str(clip), str(out)], env=env)
    assert run.returncode == -9
    (tmp_path / ".out.mp4.1234.part").write_bytes(b"an encode a kill interrupted")
    config = presets.DEFAULT.with_(size=32, iterations=1, precision="float32")
    result = video.stylize_video(clip, DEMO_STYLE, out, resume=True, config=config, seed=0)
    assert result.frames == 2 and video.probe(out).frames == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "out.mp4"]  # nothing left over


def test_a_snapshot_that_cannot_be_saved_does_not_cost_the_run(tmp_path, content_path, style_path,
                                                                 monkeypatch, capsys) -> None:
    out = tmp_path / "out.png"
    fail_first_save(monkeypatch, errno.ENOSPC)  # the first snapshot hits a full disk
    assert main(["stylize", str(content_path), "--style", str(style_path), "-o", str(out), *FAST,
                 "--snapshot-every", "1"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "disk is full; free some space" in err and "no more snapshots" in err
    assert Image.open(out).size == (40, 27)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # and no later snapshot either


# --- model files and training runs -----------------------------------------------------------------

def _model_bytes(tmp_path: Path, config_change: dict | None = None, nan: bool = False) -> Path:
    """A tiny real model file, its header's config changed or one weight made NaN."""
    import json

    import torch

    from brushwork.feedforward import modelfile
    from brushwork.nets.transformer import TransformerConfig, TransformerNet

    net = TransformerNet(TransformerConfig(2, 1))
    if nan:
        with torch.no_grad():
            net.up[-1].weight[0, 0, 0, 0] = float("nan")
    path = modelfile.save_model(net, tmp_path / "m.safetensors", training={},
                                styles=[modelfile.style_record(Image.new("RGB", (8, 8)), "s.png", 1.0)])
    if config_change:
        data = path.read_bytes()
        n = int.from_bytes(data[:8], "little")
        head = json.loads(data[8:8 + n])
        meta = json.loads(head["__metadata__"]["brushwork"])
        meta["config"].update(config_change)
        head["__metadata__"]["brushwork"] = json.dumps(meta)
        text = json.dumps(head).encode()
        path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n:])
    return path


@pytest.mark.parametrize("change, nan, needle", [
    ({"width": 10**9}, False, "width must be"),  # would be terabytes if built before checking
    ({"width": 3}, False, "do not fit"),
    ({"blocks": "1"}, False, "blocks must be"),
    (None, True, "not finite"),
])
def test_a_damaged_model_file_gives_one_line(tmp_path, change, nan, needle) -> None:
    from brushwork.feedforward import modelfile

    path = _model_bytes(tmp_path, change, nan)
    with pytest.raises(BrushworkError, match=needle) as err:
        modelfile.load_model(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


TINY_RUN = dict(steps=1, batch=1, crop=16, style_size=64, width=2, blocks=1, precision="float32")


@pytest.fixture
def photos(tmp_path, tiny_rgb) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    tiny_rgb.rename(folder / "p.png")
    return folder


def test_a_training_run_killed_before_its_first_checkpoint_resumes(tmp_path, photos) -> None:
    """`--resume` with nothing to resume starts afresh, as a video does, but never over a finished model."""
    from brushwork.assets import DEMO_STYLE
    from brushwork.feedforward import modelfile
    from brushwork.feedforward.train import TrainSettings, train, work_folder

    out = tmp_path / "m.safetensors"
    work_folder(out).mkdir()  # what a kill right after start-up leaves
    settings = TrainSettings(**TINY_RUN)
    assert train([DEMO_STYLE], photos, out, settings, resume=True).steps == 1
    modelfile.load_model(out)
    (work_folder(out) / "checkpoint.pt").unlink()
    before = out.read_bytes()
    with pytest.raises(modelfile.ModelError, match="no checkpoint"):
        train([DEMO_STYLE], photos, out, settings, resume=True)
    assert out.read_bytes() == before


def test_a_kill_at_a_checkpoint_keeps_that_steps_sample_strip(tmp_path, photos, monkeypatch) -> None:
    """Found by benchmarks/crash_safety.py: the strip was written after the checkpoint, so a kill between
    the two resumed past it and the strip was never made."""
    from brushwork.assets import DEMO_CONTENT, DEMO_STYLE
    from brushwork.feedforward import train as training

    class Killed(BaseException):
        pass

    def killed(*_):
        raise Killed

    out = tmp_path / "m.safetensors"
    monkeypatch.setattr(training, "write_atomically", killed)  # dies writing its first checkpoint
    with pytest.raises(Killed):
        training.train([DEMO_STYLE], photos, out, training.TrainSettings(**TINY_RUN), samples=[DEMO_CONTENT],
                       sample_every=1)
    assert (training.work_folder(out) / "samples" / "step_000001.jpg").is_file()
