"""The command line end to end: exit codes, messages, and no half-written outputs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from brushwork.cli import main

FAST = ["--size", "40", "--iterations", "2", "--precision", "float32", "-q"]


def test_stylize_writes_the_output_and_prints_its_path(tmp_path, content_path, style_path, capsys) -> None:
    out = tmp_path / "out.png"
    assert main(["stylize", str(content_path), "--style", str(style_path), "-o", str(out), *FAST]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert Image.open(out).size == (40, 27)


def test_demo_shows_the_instant_result_first_then_the_optimisers(tmp_path, capsys) -> None:
    out = tmp_path / "demo.jpg"
    assert main(["demo", "-o", str(out), *FAST]) == 0
    instant = tmp_path / "demo-instant.jpg"
    assert capsys.readouterr().out.splitlines() == [str(instant), str(out)]
    assert Image.open(instant).size == Image.open(out).size == (40, 40)


def test_seed_preset_prints_adjustment_values(tmp_path, content_path, style_path, capsys) -> None:
    args = ["stylize", str(content_path), "--style", str(style_path), "-o", str(tmp_path / "s.png"),
            "--preset", "seed", "--size", "32", "--iterations", "11", "-q"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.count("Weight Adj. for Content:") == 2  # iterations 0 and 10, like the notebook
    assert "Iteration: 0" in printed and "Iteration: 10" in printed


# the default preset's pyramid (1/8, 1/4, 1/2, 50 iterations each): at 64 px only the 32 px level fits the network
@pytest.mark.parametrize("flags, sizes", [([], [32] * 50 + [64] * 4), (["--preset", "subtle"], [64] * 4),
                                          (["--pyramid", "0.5"], [32, 32, 64, 64, 64, 64]),
                                          (["--pyramid", "0.5", "--pyramid-iterations", "1"], [32, 64, 64, 64, 64]),
                                          (["--pyramid", ""], [64] * 4)])
def test_pyramid_levels_from_the_command_line(tmp_path, content_path, style_path, monkeypatch, flags,
                                              sizes) -> None:
    from brushwork import optimise

    seen, real = [], optimise.Stylizer._optimise
    monkeypatch.setattr(optimise.Stylizer, "_optimise",
                        lambda self, x, terms, n: (seen.extend([x.shape[-1]] * n), real(self, x, terms, n))[1])
    assert main(["stylize", str(content_path), "-s", str(style_path), "-o", str(tmp_path / "o.png"),
                 "--size", "64", "--iterations", "4", "-q", *flags]) == 0
    assert seen == sizes


def test_history_reaches_the_optimiser(tmp_path, content_path, style_path, monkeypatch) -> None:
    from brushwork import optimise

    seen, real = [], optimise.LBFGS
    monkeypatch.setattr(optimise, "LBFGS", lambda history, **kw: seen.append(history) or real(history, **kw))
    assert main(["stylize", str(content_path), "-s", str(style_path), "-o", str(tmp_path / "o.png"), *FAST,
                 "--pyramid", "", "--history", "3"]) == 0
    assert seen == [3]


def test_snapshots(tmp_path, content_path, style_path) -> None:
    out = tmp_path / "o.png"
    main(["stylize", str(content_path), "-s", str(style_path), "-o", str(out), *FAST[:2],
          "--iterations", "4", "--snapshot-every", "2", "-q"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.00002.png", "o.00004.png", "o.png"]


@pytest.mark.parametrize("case, match", [
    ("missing_content", "no such file"),
    ("text_style", "not an image"),
    ("missing_folder", "does not exist"),
    ("bad_extension", "extension"),
    ("bad_weights", "neither a safetensors"),
])
def test_bad_input_is_one_clear_line_and_no_output(tmp_path, content_path, style_path, capsys,
                                                   case: str, match: str) -> None:
    content, style, out = str(content_path), str(style_path), tmp_path / "out.png"
    extra: list[str] = []
    if case == "missing_content":
        content = str(tmp_path / "nope.jpg")
    elif case == "text_style":
        style = str(tmp_path / "style.jpg")
        Path(style).write_text("not really a jpeg")
    elif case == "missing_folder":
        out = tmp_path / "no" / "such" / "out.png"
    elif case == "bad_extension":
        out = tmp_path / "out.xyz"
    elif case == "bad_weights":
        bad = tmp_path / "w.safetensors"
        bad.write_bytes(b"garbage")
        extra = ["--weights", str(bad)]
    code = main(["stylize", content, "--style", style, "-o", str(out), *FAST, *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("brushwork: error:") and match in err[0]
    assert not out.exists()
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".png", ".part", ".xyz")]


def test_evaluate_prints_two_distances(tmp_path, content_path, style_path, capsys) -> None:
    assert main(["evaluate", str(content_path), "--content", str(content_path), "--style", str(style_path)]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert len(lines) == 3  # content, style and the final newline: no layers unless asked
    assert lines[0].split() == ["content", "0.0000"]
    assert float(lines[1].split()[1]) > 0.1


def test_evaluate_layers_prints_each_style_layer(content_path, style_path, capsys) -> None:
    assert main(["evaluate", str(content_path), "--content", str(content_path), "--style", str(style_path),
                 "--layers"]) == 0
    lines = capsys.readouterr().out.split()
    layers = {lines[i]: float(lines[i + 1]) for i in range(4, len(lines), 2)}
    assert list(layers) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert float(lines[3]) == pytest.approx(sum(layers.values()) / 5, abs=1e-3)


def test_weights_list(capsys) -> None:
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "vgg16" in out and "bundled" in out and "vgg19" in out


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C; a scheduler's or `kill`'s stop
def test_ctrl_c_saves_the_best_image_so_far(tmp_path, content_path, style_path, stop) -> None:
    out = tmp_path / "out.png"
    cmd = [sys.executable, "-m", "brushwork.cli", "stylize", str(content_path), "--style", str(style_path),
           "-o", str(out), "--size", "40", "--iterations", "100000", "--snapshot-every", "1", "-q"]
    # A shell's background job starts with SIGINT ignored, and Python keeps an inherited "ignore": restore
    # the default so the child is interrupted as a terminal's Ctrl-C would, however pytest was started.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (tmp_path / "out.00002.png").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "best image so far" in err
    assert Image.open(out).size == (40, 27)


@pytest.mark.parametrize("flags, sides", [([], [32, 64, 128, 256]), (["--pyramid", "0.5"], [256]),
                                          (["--pyramid", "0.5", "--pyramid-px", "64"], [64, 128, 256])])
def test_pyramid_alone_means_exactly_its_levels(tmp_path, flags, sides) -> None:
    # the default preset starts at 32 px at every size; --pyramid alone drops that unless --pyramid-px is given
    from brushwork import Stylizer
    from brushwork.cli import _config, parser

    args = parser().parse_args(["stylize", "c.png", "-s", "s.png", "--size", "512", *flags])
    plan = Stylizer(_config(args)).levels(Image.new("RGB", (600, 600)))
    assert [side for side, _ in plan] == [*sides, 512]


@pytest.mark.parametrize("flag, default", [("histogram_weight", 2.0), ("pyramid_detail", 0.0)])
@pytest.mark.parametrize("flags, on", [([], None), (["--X", "0"], 0.0), (["--preset", "subtle"], 0.0),
                                       (["--strength", "0.5"], 0.0), (["--X", "0.5", "--strength", "0.5"], 0.5)])
def test_the_default_s_per_picture_settings_reach_the_run(flag, default, flags, on) -> None:
    # the default's (painterly.md, sections 13 and 15: the detail is off); a strength turns the preset's off, a value
    # given stays on
    from brushwork.cli import _config, parser

    flags = [f"--{flag.replace('_', '-')}" if f == "--X" else f for f in flags]
    args = parser().parse_args(["stylize", "c.png", "-s", "s.png", *flags])
    assert getattr(_config(args), flag) == (default if on is None else on)


def test_a_run_with_a_histogram_weight_and_a_negative_one_refused(tmp_path, content_path, style_path, capsys) -> None:
    out = tmp_path / "o.png"
    assert main(["stylize", str(content_path), "-s", str(style_path), "-o", str(out), *FAST,
                 "--histogram-weight", "2"]) == 0
    assert Image.open(out).size[0] > 0
    with pytest.raises(SystemExit):
        main(["stylize", str(content_path), "-s", str(style_path), "-o", str(tmp_path / "n.png"), *FAST,
              "--histogram-weight", "-1"])
    assert "histogram" in capsys.readouterr().err and not (tmp_path / "n.png").exists()


def test_a_histogram_weight_with_regions_is_refused(tmp_path, content_path, style_path, capsys) -> None:
    mask = tmp_path / "m.png"
    Image.new("L", (40, 30), 255).save(mask)
    assert main(["stylize", str(content_path), "-s", str(style_path), "-o", str(tmp_path / "o.png"), *FAST,
                 "--histogram-weight", "2", "--keep-mask", str(mask)]) != 0
    assert "--histogram-weight" in capsys.readouterr().err and not (tmp_path / "o.png").exists()
    # the default preset's own term is left out with a mask (perceptual.terms), not refused
    assert main(["stylize", str(content_path), "-s", str(style_path), "-o", str(tmp_path / "o.png"), *FAST,
                 "--keep-mask", str(mask)]) == 0
