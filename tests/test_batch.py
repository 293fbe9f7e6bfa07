"""`brushwork batch`: jobs, the manifest (resume, changed settings, failures), workers, Ray, the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brushwork import batch, presets
from brushwork.cli import main
from brushwork.weights import load_weights

CONFIG = presets.DEFAULT.with_(size=32, iterations=3, precision="float32", pyramid=(), pyramid_iterations=())
SETTINGS = batch.Settings(config=CONFIG, seed=0)


def _image(path: Path, seed: int, size: tuple[int, int] = (48, 36)) -> Path:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(small).resize(size, Image.BICUBIC).save(path)
    return path


@pytest.fixture
def work(tmp_path: Path) -> tuple[Path, list[Path], Path]:
    """Three photos and two paintings, all made; the output folder."""
    for i in range(3):
        _image(tmp_path / "photos" / f"p{i}.png", i)
    styles = [_image(tmp_path / f"style{i}.png", 10 + i, (40, 40)) for i in range(2)]
    return tmp_path / "photos", styles, tmp_path / "out"


def _state(out: Path) -> dict[str, tuple[int, int]]:
    """Each result file's inode and modification time: a file written again changes both."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*--*.png")}


def test_a_stopped_batch_resumes_without_redoing_or_losing_a_job(work, monkeypatch) -> None:
    from brushwork import optimise

    photos, styles, out = work
    loads = []
    monkeypatch.setattr(optimise, "load_weights", lambda *a: loads.append(a) or load_weights(*a))
    first = batch.stylize_batch([photos], styles, out, SETTINGS)
    done = [next(first), next(first)]
    first.close()  # stopped part-way, as by Ctrl-C between jobs
    assert len(_state(out)) == 2
    before = _state(out)
    manifest = json.loads((out / batch.MANIFEST).read_text())["jobs"]
    assert sorted(manifest) == sorted(o.job.output for o in done)

    (out / ".p2--style1.png.k1ll3d.part").write_bytes(b"half a png")  # what a kill mid-save leaves
    rest = list(batch.stylize_batch([photos], styles, out, SETTINGS))
    assert not list(out.glob(".*.part"))
    assert len(loads) == 2  # the network once per run, not once per photo
    assert len(rest) == 4 and not {o.job.output for o in rest} & {o.job.output for o in done}
    after = _state(out)
    assert {k: after[k] for k in before} == before  # the first run's results were not written again
    assert sorted(after) == sorted(f"p{i}--style{s}.png" for i in range(3) for s in range(2))
    assert all(r["status"] == "done" for r in json.loads((out / batch.MANIFEST).read_text())["jobs"].values())
    assert list(batch.stylize_batch([photos], styles, out, SETTINGS)) == []  # nothing left to do
    assert _state(out) == after


def test_a_changed_setting_or_painting_redoes_only_the_jobs_it_changes(work) -> None:
    photos, styles, out = work
    list(batch.stylize_batch([photos], styles, out, SETTINGS))
    _image(styles[1], 99, (40, 40))  # same file name, other pixels
    redone = list(batch.stylize_batch([photos], styles, out, SETTINGS))
    assert sorted(o.job.output for o in redone) == [f"p{i}--style1.png" for i in range(3)]
    other = batch.Settings(config=CONFIG.with_(style_weight=5.0), seed=0)
    assert len(list(batch.stylize_batch([photos], styles[:1], out, other))) == 3


def test_blended_paintings_make_one_job_per_photo(work) -> None:
    photos, styles, out = work
    plan = batch.plan([photos], styles, out, batch.Settings(config=CONFIG, style_blend=(0.7, 0.3)))
    assert [j.output for j in plan.jobs] == [f"p{i}--style0+style1.png" for i in range(3)]
    with pytest.raises(batch.BatchError, match="one weight per painting"):
        batch.plan([photos], styles, out, batch.Settings(config=CONFIG, style_blend=(1.0,)))


def test_failures_are_listed_with_their_reason_and_retried_on_request(work) -> None:
    photos, styles, out = work
    (photos / "broken.jpg").write_bytes(b"not a picture")
    outcomes = list(batch.stylize_batch([photos], styles[:1], out, SETTINGS))
    failed = [o for o in outcomes if o.error]
    assert [o.job.output for o in failed] == ["broken--style0.png"]
    assert "broken.jpg: not an image" in failed[0].error and not (out / "broken--style0.png").exists()
    plan = batch.plan([photos], styles[:1], out, SETTINGS)
    assert plan.todo == [] and [(j.output, e) for j, e in plan.failed()] == [("broken--style0.png", failed[0].error)]
    again = batch.plan([photos], styles[:1], out, SETTINGS, retry_failed=True)
    assert [j.output for j in again.todo] == ["broken--style0.png"]
    page = (out / batch.INDEX).read_text()
    assert "failed: " in page and 'src="p0--style0.png"' in page and 'src="../photos/p0.png"' in page


def test_outputs_never_replace_inputs(work) -> None:
    photos, styles, out = work
    with pytest.raises(batch.BatchError, match="also a folder of photos"):
        batch.plan([photos], styles, photos, SETTINGS)
    with pytest.raises(batch.BatchError, match="also a folder of photos"):  # photos/*.png -o photos/
        batch.plan(sorted(photos.glob("*.png")), styles, photos / ".", SETTINGS)
    out.mkdir()
    _image(out / "p0--style0.png", 5)  # a photo given by name in the output folder
    with pytest.raises(batch.BatchError, match="also a folder of photos"):
        batch.plan([photos, out / "p0--style0.png"], styles, out, SETTINGS)
    (out / "p0--style0.png").unlink()
    (out / "p0--style0.png").symlink_to(photos / "p0.png")  # a job would write over a photo through a link
    with pytest.raises(batch.BatchError, match="also an input"):
        batch.plan([photos], styles, out, SETTINGS)


def test_cli_batch_with_two_workers_then_a_rerun(work, capsys) -> None:
    photos, styles, out = work
    args = ["batch", str(photos), "--style", *map(str, styles), "-o", str(out), "--size", "32", "--iterations", "2",
            "--pyramid", "", "--precision", "float32", "--seed", "0", "-q"]
    assert main([*args, "--workers", "2"]) == 0
    assert "6 of 6 done (0 skipped" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*--*.png")) == sorted(f"p{i}--style{s}.png" for i in range(3)
                                                                   for s in range(2))
    assert main(args) == 0
    assert "6 of 6 done (6 skipped" in capsys.readouterr().out
    assert main(["batch", str(photos), "--style", str(styles[0]), "-o", str(photos), "-q"]) == 1
    assert "also a folder of photos" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--workers", "0"])
    assert exit_.value.code == 2


class _DeadRay:
    """Just enough of the `ray` module for `batch._ray`: every actor dies on its first job."""

    class exceptions:  # noqa: N801 - mirrors ray.exceptions
        class RayError(Exception):
            pass

    def __init__(self) -> None:
        self.killed: list[object] = []

    def is_initialized(self) -> bool:
        return True

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 2}

    class _Actor:  # actor.run.remote(job) gives a reference; ray.get of it fails
        def __init__(self, *_: object) -> None:
            self.run = self

        def remote(self, job: batch.Job) -> tuple[str, batch.Job]:
            return ("ref", job)

    def remote(self, **_: object):  # ray.remote(...)(RayWorker).remote(...) starts an actor
        actor_class = type("ActorClass", (), {"remote": staticmethod(self._Actor)})
        return lambda cls: actor_class

    def wait(self, refs: list, num_returns: int) -> tuple[list, list]:
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref: object) -> None:
        raise self.exceptions.RayError("actor died")

    def kill(self, actor: object) -> None:
        self.killed.append(actor)


def test_jobs_left_when_every_ray_worker_died_are_an_error_not_silence(work, monkeypatch) -> None:
    photos, styles, out = work
    fake = _DeadRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    todo = batch.plan([photos], styles, out, SETTINGS).todo  # 6 jobs, 2 actors
    outcomes = []
    with pytest.raises(batch.BatchError, match="^4 job.s. were not started because every Ray worker died"):
        for outcome in batch._ray(todo, SETTINGS, 2, None):
            outcomes.append(outcome)
    assert len(outcomes) == 2 and all(o[2].startswith("RayError") for o in outcomes) and len(fake.killed) == 2


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    ray_module = pytest.importorskip("ray")
    marker = tmp_path_factory.mktemp("crash") / "crashed"
    os.environ[batch.CRASH_HOOK] = str(marker)  # Ray's worker processes inherit it
    ray_module.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield marker
    ray_module.shutdown()
    del os.environ[batch.CRASH_HOOK]


def test_ray_worker_killed_mid_job_loses_and_duplicates_nothing(work, local_ray) -> None:
    photos, styles, out = work
    outcomes = list(batch.stylize_batch([photos], styles, out, SETTINGS, workers=2, ray=True))
    assert local_ray.exists()  # one actor's process ended in the middle of its first job
    names = [o.job.output for o in outcomes]
    assert sorted(names) == sorted(f"p{i}--style{s}.png" for i in range(3) for s in range(2))  # each once
    assert all(o.error is None and o.path.is_file() for o in outcomes)
    manifest = json.loads((out / batch.MANIFEST).read_text())["jobs"]
    assert sorted(manifest) == sorted(names) and all(r["status"] == "done" for r in manifest.values())
    assert not list(out.glob(".*.part"))


def test_a_model_batch_loads_the_network_once_and_matches_instant_stylizer(work, monkeypatch) -> None:
    import torch

    from brushwork.feedforward import infer, modelfile
    from brushwork.nets.transformer import TransformerConfig, TransformerNet

    photos, styles, out = work
    torch.manual_seed(0)
    model = modelfile.save_model(TransformerNet(TransformerConfig(width=4, blocks=1)), out.parent / "m.safetensors",
                                 styles=[modelfile.style_record(Image.open(styles[0]), "style0", 1.0)], training={})
    loads = []
    monkeypatch.setattr(infer, "load_model", lambda *a, **k: loads.append(a) or modelfile.load_model(*a, **k))
    settings = batch.Settings(config=CONFIG, model=str(model), size=40)
    outcomes = list(batch.stylize_batch([photos], [], out, settings))
    assert len(loads) == 1 and sorted(o.job.output for o in outcomes) == [f"p{i}--m.png" for i in range(3)]
    expected = infer.InstantStylizer(model, precision="float32")(photos / "p1.png", 40)
    assert np.array_equal(np.asarray(Image.open(out / "p1--m.png")), np.asarray(expected))


def test_a_fast_batch_loads_the_network_once_and_matches_the_fast_picture(work, monkeypatch) -> None:
    from brushwork.feedforward import wct

    photos, styles, out = work
    loads, load = [], wct.load_decoders
    monkeypatch.setattr(wct, "load_decoders", lambda *a, **k: loads.append(a) or load(*a, **k))
    settings = batch.Settings(config=CONFIG, fast=True, strength=0.7, size=40)
    outcomes = list(batch.stylize_batch([photos], styles, out, settings))
    assert len(loads) == 1  # one network for both paintings
    assert sorted(o.job.output for o in outcomes) == sorted(f"p{i}--style{s}.png" for i in range(3) for s in range(2))
    for s in range(2):
        expected = wct.WCTStylizer([styles[s]], strength=0.7, precision="float32")(photos / "p1.png", 40)
        assert np.array_equal(np.asarray(Image.open(out / f"p1--style{s}.png")), np.asarray(expected))
    # the strength is part of every job's key; the optimiser's jobs are other jobs again
    again = batch.plan([photos], styles, out, settings)
    assert not again.todo
    assert len(batch.plan([photos], styles, out, dataclasses.replace(settings, strength=0.5)).todo) == 6
    assert len(batch.plan([photos], styles, out, SETTINGS).todo) == 6


def test_a_fast_worker_keeps_only_the_most_recent_paintings_ready(work, monkeypatch) -> None:
    """A batch of many paintings: each ready painter holds its images and statistics, so a worker keeps the
    last PAINTERS of them and restyles the network it already has for the next."""
    _, styles, _ = work
    monkeypatch.setattr(batch, "PAINTERS", 2)
    engine = batch.Engine(batch.Settings(config=CONFIG, fast=True, size=40))
    asked = [(str(styles[0]),), (str(styles[1]),), (str(styles[0]), str(styles[1])), (str(styles[1]),)]
    painters = [engine._fast_painter(k) for k in asked]
    assert list(engine.painters) == [asked[2], asked[3]]  # the oldest gone, the one used again kept
    assert painters[3] is painters[1]


def test_a_fast_batch_fails_a_thin_painting_alone_and_refuses_what_it_cannot_do(work, capsys) -> None:
    photos, styles, out = work
    thin = _image(styles[0].parent / "thin.png", 3, (40, 4))
    outcomes = list(batch.stylize_batch([photos], [styles[0], thin], out,
                                        batch.Settings(config=CONFIG, fast=True, size=40)))
    failed = [o for o in outcomes if o.error is not None]
    assert len(outcomes) == 6 and len(failed) == 3 and all("too thin" in o.error for o in failed)
    with pytest.raises(batch.BatchError, match="not both"):
        batch.Settings(config=CONFIG, fast=True, model="m")
    with pytest.raises(ValueError, match="luminance only"):
        batch.Settings(config=CONFIG.with_(preserve_colors="histogram"), fast=True)
    args = ["batch", str(photos), "--style", str(styles[0]), "-o", str(out / "cli"), "--size", "40", "-q"]
    assert main([*args, "--fast", "--strength", "0.5"]) == 0
    assert "3 of 3 done" in capsys.readouterr().out
    # the network's strength, not the optimiser's: no clash with the seed preset or a style weight
    assert main([*args, "--fast", "--strength", "0.5", "--preset", "seed", "--style-weight", "3"]) == 0
    capsys.readouterr()
    for extra, needle in ((["--decoders", str(out / "none.safetensors")], "--decoders applies to --fast"),

                          (["--fast", "--decoders", str(out / "none.safetensors")], "no such decoder file"),
                          (["--fast", "--model", "m"], "not both")):
        assert main([*args, *extra]) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and needle in err, err
