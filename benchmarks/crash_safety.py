"""Crash safety of long runs: kill a job with SIGKILL at random moments, resume it each time, and check it
ends exactly as an uninterrupted run does.

    python benchmarks/crash_safety.py                # every job: 20 kills each, figures to benchmarks/results/
    python benchmarks/crash_safety.py train          # only the training run
    python benchmarks/crash_safety.py --kills 5 --seed 1

For each job: one uninterrupted reference run, then the same command with --resume started again and
again, each start SIGKILLed at a random moment (in start-up, mid-frame, between frames, while
encoding; see `torture`) until `--kills` kills have landed; then one last start runs to the end.
The kept outputs must equal the reference's bit for bit, with none lost or doubled and no temporary
files left, and the final file must decode completely.

Jobs are entries of JOBS (a command line and a check): a video, a training run and a batch are here: a
`Job` whose `command(out, resume)` gives the argv and whose `compare(reference, run)` returns the
problems found.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
sys.path.insert(0, str(ROOT / "src"))

from brushwork import video  # noqa: E402
from brushwork.assets import DEMO_STYLE  # noqa: E402


@dataclass
class Job:
    """A resumable job: how to start it, and how to compare a finished run with the reference."""

    name: str
    command: Callable[[Path, bool], list[str]]  # (output folder, resume) -> argv
    compare: Callable[[Path, Path], list[str]]  # (reference folder, run folder) -> problems
    progress: Callable[[Path], int]  # units finished so far in a run folder (frames, epochs, items)
    finishing: Callable[[Path], bool]  # whether the run is writing its final output (e.g. encoding)
    total: int  # units in the whole job
    describe: str


# --- the video job ----------------------------------------------------------------------------------

VIDEO_FRAMES = 8


def _clip(out: Path) -> Path:
    """The first frames of the shared clip (a made one where the checkout has no shared media)."""
    src = SHARED / "video" / "cockatoo.mp4"
    clip = out / "clip.mp4"
    if not clip.exists():
        args = ["-i", str(src)] if src.exists() else ["-f", "lavfi", "-i", "testsrc=size=96x64:rate=10"]
        subprocess.run([video.ffmpeg_exe(), "-v", "error", "-y", *args, "-frames:v", str(VIDEO_FRAMES),
                        "-vf", "scale=96:-2", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip)], check=True)
    return clip


def video_command(out: Path, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "brushwork.cli", "video", str(_clip(out.parent)), "--style", str(DEMO_STYLE),
           "-o", str(out / "out.mp4"), "--size", "64", "--iterations", "40", "--later-iterations", "20",
           "--max-frames", str(VIDEO_FRAMES), "--seed", "0", "--keep-frames", "--precision", "float32", "-q"]
    return cmd + (["--resume"] if resume else [])


def video_compare(reference: Path, run: Path) -> list[str]:
    problems = []
    ref_frames = sorted((reference / "out.mp4.frames").glob("*.png"))
    frames = sorted((run / "out.mp4.frames").glob("*.png"))
    names = [p.name for p in frames]
    if names != [p.name for p in ref_frames]:
        problems.append(f"frames {names} != reference {[p.name for p in ref_frames]}")
    for a, b in zip(ref_frames, frames):
        x, y = np.asarray(Image.open(a)), np.asarray(Image.open(b))
        if x.shape != y.shape or not np.array_equal(x, y):
            diff = np.abs(x.astype(int) - y.astype(int)).max() if x.shape == y.shape else "shape"
            problems.append(f"{b.name} differs from the reference (max difference {diff})")
    leftovers = [p.name for p in run.rglob(".*") if p.name.endswith(".part")]
    if leftovers:
        problems.append(f"temporary files left: {leftovers}")
    output = run / "out.mp4"
    if not output.is_file():
        return problems + ["no out.mp4"]
    info = video.probe(output)
    decoded = sum(1 for _ in video.read_frames(info, (info.width, info.height)))
    if info.frames != VIDEO_FRAMES or decoded != VIDEO_FRAMES:
        problems.append(f"out.mp4 has {info.frames} packets and {decoded} decodable frames, not {VIDEO_FRAMES}")
    return problems


def video_progress(out: Path) -> int:
    return len(list((out / "out.mp4.frames").glob("*.png")))


def video_finishing(out: Path) -> bool:
    return any(out.glob(".out.mp4.*.part"))  # the encoder's temporary file


# --- the training job -------------------------------------------------------------------------------

TRAIN_STEPS, TRAIN_EVERY = 24, 2  # a checkpoint every 2 steps, so a resume often redoes a step


def _photos(out: Path) -> Path:
    """Six made photos (smooth random colours) in a folder of the run's own, never the shared media."""
    folder = out / "photos"
    if not folder.exists():
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(6):
            small = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
            Image.fromarray(small).resize((90, 60), Image.BICUBIC).save(folder / f"p{i}.jpg")
    return folder


def train_command(out: Path, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "brushwork.cli", "train", str(DEMO_STYLE), "--photos", str(_photos(out.parent)),
           "-o", str(out / "model.safetensors"), "--steps", str(TRAIN_STEPS), "--batch", "1", "--crop", "32",
           "--style-size", "64", "--width", "4", "--checkpoint-every", str(TRAIN_EVERY), "--sample-every", "8",
           "--precision", "float32", "--seed", "0", "-q"]
    return cmd + (["--resume"] if resume else [])


def _steps_done(model: Path) -> int:
    """Steps recorded in a model file's header (0 if none yet); reads the JSON header only."""
    if not model.is_file():
        return 0
    with open(model, "rb") as f:
        head = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    return json.loads(head["__metadata__"]["brushwork"])["training"]["steps_done"]


def train_compare(reference: Path, run: Path) -> list[str]:
    from brushwork.feedforward import modelfile

    problems = []
    kept = sorted(p.relative_to(run) for p in run.rglob("*") if p.is_file())
    if kept != sorted(p.relative_to(reference) for p in reference.rglob("*") if p.is_file()):
        problems.append(f"files {[str(p) for p in kept]} differ from the reference's")  # also catches .part files
    for name in ("model.safetensors", "model.training/samples/step_000008.jpg",
                 "model.training/samples/step_000024.jpg"):
        a, b = reference / name, run / name
        if not (a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()):
            problems.append(f"{name} differs from the reference's (or is missing)")
    try:
        modelfile.load_model(run / "model.safetensors")
    except modelfile.ModelError as exc:
        problems.append(f"the final model does not load: {exc}")
    return problems


# --- the batch job ----------------------------------------------------------------------------------

BATCH_PHOTOS = 6  # the made photos of the training job


def batch_command(out: Path, resume: bool) -> list[str]:
    """A batch resumes by itself (its manifest), so `resume` changes nothing."""
    return [sys.executable, "-m", "brushwork.cli", "batch", str(_photos(out.parent)), "--style", str(DEMO_STYLE),
            "-o", str(out / "results"), "--size", "48", "--iterations", "30", "--pyramid", "",
            "--precision", "float32", "--seed", "0", "-q"]


def _batch_done(out: Path) -> int:
    manifest = out / "results" / "manifest.json"
    if not manifest.is_file():
        return 0
    return sum(r["status"] == "done" for r in json.loads(manifest.read_text())["jobs"].values())


def batch_compare(reference: Path, run: Path) -> list[str]:
    problems = []
    ref, got = reference / "results", run / "results"
    kept = sorted(p.name for p in got.iterdir())
    if kept != sorted(p.name for p in ref.iterdir()):
        problems.append(f"files {kept} differ from the reference's")  # also catches .part files
    for a in ref.glob("*.png"):
        b = got / a.name
        if not (b.is_file() and np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))):
            problems.append(f"{a.name} differs from the reference's (or is missing)")
    if _batch_done(run) != BATCH_PHOTOS:
        problems.append(f"the manifest records {_batch_done(run)} jobs done, not {BATCH_PHOTOS}")
    page = (got / "index.html").read_text() if (got / "index.html").is_file() else ""
    if page.count("<tr>") != BATCH_PHOTOS + 1:
        problems.append("index.html is missing or does not show every job")
    return problems


JOBS = {"video": Job("video", video_command, video_compare, video_progress, video_finishing, VIDEO_FRAMES,
                     f"{VIDEO_FRAMES} frames of cockatoo.mp4 at 64 px, 40 iterations then 20 per frame, "
                     "float32, seed 0, --keep-frames"),
        "train": Job("train", train_command, train_compare,
                     lambda out: _steps_done(out / "model.safetensors") // TRAIN_EVERY,
                     lambda out: any(out.rglob(".*.part")), TRAIN_STEPS // TRAIN_EVERY,
                     f"{TRAIN_STEPS} steps of one 32 px crop from 6 made photos, width 4, the demo style at "
                     f"64 px, float32, seed 0, a checkpoint every {TRAIN_EVERY} steps (units: checkpoints), "
                     "sample strips every 8"),
        "batch": Job("batch", batch_command, batch_compare, _batch_done,
                     lambda out: any((out / "results").glob(".*.part")), BATCH_PHOTOS,
                     f"`brushwork batch` of the {BATCH_PHOTOS} made photos x the demo style at 48 px, 30 "
                     "iterations, float32, seed 0, one worker (units: jobs in the manifest)")}


# --- the harness ------------------------------------------------------------------------------------

def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def reference_run(job: Job, out: Path) -> tuple[float, float]:
    """Run the job uninterrupted; returns (seconds to the first finished unit, mean seconds per unit)."""
    start = time.perf_counter()
    proc = subprocess.Popen(job.command(out, False), env=_env(), stdout=subprocess.DEVNULL)
    finished = []
    while proc.poll() is None:
        if job.progress(out) > len(finished):
            finished.append(time.perf_counter() - start)
        time.sleep(0.02)
    if proc.returncode != 0 or not finished:
        raise SystemExit(f"the reference run failed (exit {proc.returncode})")
    return finished[0], (finished[-1] - finished[0]) / max(1, len(finished) - 1)


def run_to_end(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=_env(), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def torture(job: Job, folder: Path, kills: int, rng: random.Random) -> dict:
    reference, run = folder / "reference", folder / "killed"
    for f in (reference, run):
        f.mkdir(parents=True, exist_ok=True)
    first, per_unit = reference_run(job, reference)
    log, starts = [], 0
    while len([e for e in log if e["killed"]]) < kills:
        before = job.progress(run)
        proc = subprocess.Popen(job.command(run, True), env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        started, starts = time.perf_counter(), starts + 1
        # A random moment: a quarter of the kills anywhere in start-up and the first unit, the others
        # at a random point of the next unit or the one after (so they spread over the whole job), and
        # once every unit is done, a moment of the final write.
        # A resumed process shows no progress until it finishes a unit, so "a point of the next unit" is
        # timed from the reference's start-up (its first unit's time less one unit's), not from the start.
        offset = rng.uniform(0, per_unit)
        if rng.random() < 0.25:
            deadline, wait_for = started + rng.uniform(0, first), before
        elif before < job.total and rng.random() < 0.5:
            deadline, wait_for = started + max(0.0, first - per_unit) + offset, before
        else:
            deadline, wait_for = None, before + 1
        while proc.poll() is None:
            now = time.perf_counter()
            if deadline is None and before == job.total and job.finishing(run):
                deadline = now + rng.uniform(0, 0.2)
            elif deadline is None and before < job.total and job.progress(run) >= wait_for:
                deadline = now + offset
            if deadline is not None and now >= deadline:
                break
            time.sleep(0.01)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        delay = time.perf_counter() - started
        err = proc.stderr.read().strip()
        proc.stderr.close()
        if not killed and proc.returncode != 0:
            raise SystemExit(f"a resumed run failed (exit {proc.returncode}): {err}")
        log.append({"delay_s": round(delay, 2), "killed": killed, "done_before": before,
                    "done_after": job.progress(run), "while_finishing": killed and job.finishing(run)})
        print(f"start {starts}: {'killed' if killed else 'finished'} after {delay:.1f} s"
              f"{' (writing the output)' if log[-1]['while_finishing'] else ''}, done "
              f"{before} -> {job.progress(run)} of {job.total}", flush=True)
    final_seconds = run_to_end(job.command(run, True))
    problems = job.compare(reference, run)
    return {"job": job.name, "describe": job.describe, "kills": kills, "starts": starts + 1,
            "reference_first_unit_seconds": round(first, 1), "reference_seconds_per_unit": round(per_unit, 2),
            "final_start_seconds": round(final_seconds, 1),
            "kills_mid_job": sum(e["killed"] and e["done_before"] < job.total for e in log),
            "kills_all_units_done": sum(e["killed"] and e["done_before"] == job.total for e in log),
            "problems": problems, "log": log}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("jobs", nargs="*", help=f"some of {', '.join(JOBS)} (default: all)")
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--out", type=Path, default=ROOT / "out" / "crash_safety")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "crash_safety.json")
    args = p.parse_args()
    unknown = set(args.jobs) - set(JOBS)
    if unknown:
        p.error(f"unknown job(s) {', '.join(sorted(unknown))}; known: {', '.join(JOBS)}")
    results = []
    for name in args.jobs or sorted(JOBS):
        rng = random.Random(args.seed)  # each job's kill moments the same whichever jobs run
        folder = args.out / name
        if folder.exists():
            import shutil
            shutil.rmtree(folder)
        result = torture(JOBS[name], folder, args.kills, rng)
        results.append(result)
        verdict = "OK" if not result["problems"] else "FAILED: " + "; ".join(result["problems"])
        print(f"{name}: {result['kills']} kills ({result['kills_mid_job']} with work still to do, "
              f"{result['kills_all_units_done']} in start-up or the final write with every unit done), "
              f"{result['starts']} starts: {verdict}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    # a run of some jobs replaces their entries and keeps the other jobs' figures
    ran = {r["job"] for r in results}
    kept = json.loads(args.results.read_text()) if args.results.is_file() else []
    args.results.write_text(json.dumps([r for r in kept if r["job"] not in ran] + results, indent=1))
    return 0 if all(not r["problems"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
