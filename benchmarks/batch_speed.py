"""Throughput of `brushwork batch` against a shell loop over `brushwork stylize`, and what would limit a cluster.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/batch_speed.py --photos 4 --size 256 --threads 2

Measured side by side in one run, on the same photos, each arm with the same number of torch threads in
all (`--threads`; two workers get half each), in the order loop, batch 1 worker, batch 2 workers. The
machine is shared, so compare the arms' ratios; the load average is recorded around each arm.

Then the costs that do not shrink with more GPUs, measured here: loading the network (once per worker),
the driver's work per result (writing the worker's PNG atomically and rewriting the manifest, at 500
and 10,000 jobs) and the bytes each result adds to storage; from them, images per hour on 8 and 100 GPUs for a
per-image GPU time that was NOT measured here (no GPU was lent), given as a parameter.
Writes benchmarks/results/batch-speed.{md,json}.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
sys.path.insert(0, str(ROOT / "src"))

from brushwork import batch, images, presets  # noqa: E402
from brushwork.assets import DEMO_CONTENT, DEMO_STYLE  # noqa: E402


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(threads)}


def _cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _timed(commands: list[list[str]], threads: int) -> dict:
    """Wall seconds, and the CPU seconds of every process the arm started (what a shared machine does
    not distort: its other jobs change the wall time, not the work)."""
    load, cpu = os.getloadavg()[0], _cpu_seconds()
    start = time.perf_counter()
    for cmd in commands:
        subprocess.run(cmd, env=_env(threads), check=True, stdout=subprocess.DEVNULL)
    return {"seconds": round(time.perf_counter() - start, 1), "cpu_seconds": round(_cpu_seconds() - cpu, 1),
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}


def throughput(photos: list[Path], style: Path, size: int, threads: int, out: Path) -> dict:
    cli = [sys.executable, "-m", "brushwork.cli"]
    common = ["--style", str(style), "--size", str(size), "--seed", "0", "-q"]
    folder = out / "photos"
    folder.mkdir(parents=True)
    for p in photos:
        shutil.copy(p, folder / p.name)
    arms = {
        "shell loop of `brushwork stylize`": [[*cli, "stylize", str(p), *common, "-o", str(out / f"loop-{p.stem}.png")]
                                             for p in photos],
        "batch, 1 worker": [[*cli, "batch", str(folder), *common, "-o", str(out / "batch1"), "--workers", "1"]],
        "batch, 2 workers": [[*cli, "batch", str(folder), *common, "-o", str(out / "batch2"), "--workers", "2"]],
    }
    rows = {}
    for name, commands in arms.items():
        row = _timed(commands, threads)
        row["images_per_minute"] = round(60 * len(photos) / row["seconds"], 2)
        row["cpu_seconds_per_image"] = round(row["cpu_seconds"] / len(photos), 1)
        rows[name] = row
        print(name, row, flush=True)
    manifest = batch.read_manifest(out / "batch1")
    rows["batch, 1 worker"]["worker_seconds_per_image"] = round(
        sum(r["seconds"] for r in manifest.values()) / len(manifest), 1)
    return rows


def fixed_costs(size: int, out: Path) -> dict:
    """Seconds to load the network (a worker's start), to encode one result (the worker), to write it
    and rewrite the manifest (the driver)."""
    from brushwork.optimise import Stylizer

    start = time.perf_counter()
    Stylizer(presets.DEFAULT.with_(size=size))
    load = time.perf_counter() - start
    result = images.fit(images.load(DEMO_CONTENT), size)
    start = time.perf_counter()
    for _ in range(20):  # in the worker
        png = io.BytesIO()
        result.save(png, format="PNG")
    encode = (time.perf_counter() - start) / 20
    start = time.perf_counter()
    for i in range(20):  # in the driver
        batch._write(out / f"r{i}.png", png.getvalue())
    save = (time.perf_counter() - start) / 20
    record = {"key": "0" * 32, "status": "done", "output": "photo-00000--vangogh_starry_night.png",
              "photo": "/data/photos/photo-00000.jpg", "styles": ["/data/styles/vangogh_starry_night.jpg"],
              "model": None, "seconds": 41.234, "error": None}
    manifest_seconds = {}
    for jobs in (500, 10_000):
        manifest = {f"photo-{i:05d}--x.png": record for i in range(jobs)}
        start = time.perf_counter()
        for _ in range(5):
            batch._write_manifest(out, manifest)
        manifest_seconds[jobs] = (time.perf_counter() - start) / 5
    return {"network_load_s": round(load, 2), "encode_png_s": round(encode, 4), "save_png_s": round(save, 4),
            "result_bytes": (out / "r0.png").stat().st_size,
            "manifest_rewrite_s": {str(k): round(v, 4) for k, v in manifest_seconds.items()},
            "manifest_bytes_per_job": len(json.dumps(record, indent=1)) + 40}


def on_paper(costs: dict, gpu_seconds: list[float], gpus: list[int]) -> list[dict]:
    """Images per hour on `gpus` GPUs: each worker does 3600 / t images an hour once loaded; the one driver
    saves and records every result, which caps the whole cluster at 3600 / (save + manifest) an hour."""
    rows = []
    for t in gpu_seconds:
        for g in gpus:
            for jobs in costs["manifest_rewrite_s"]:
                driver = costs["save_png_s"] + costs["manifest_rewrite_s"][jobs]
                workers = g * 3600 / t
                cap = 3600 / driver
                rows.append({"gpu_seconds_per_image": t, "gpus": g, "manifest_jobs": int(jobs),
                             "workers_per_hour": round(workers), "driver_cap_per_hour": round(cap),
                             "images_per_hour": round(min(workers, cap)),
                             "limit": "driver" if cap < workers else "GPUs",
                             "storage_MB_per_hour": round(min(workers, cap) * costs["result_bytes"] / 1e6)})
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=int, default=4, help="how many of the shared photos")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2, help="torch threads of each arm in all")
    p.add_argument("--gpu-seconds", default="1,5", help="assumed per-image GPU times for the estimate (not measured)")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "batch-speed")
    args = p.parse_args()
    found = sorted((SHARED / "content").glob("*.png")) + sorted((SHARED / "content").glob("*.jpg"))
    photos = (found or [DEMO_CONTENT])[:args.photos]
    style = SHARED / "style" / "vangogh_starry_night.jpg"
    style = style if style.exists() else DEMO_STYLE
    with tempfile.TemporaryDirectory(dir=ROOT / "out" if (ROOT / "out").is_dir() else None) as tmp:
        rows = throughput(photos, style, args.size, args.threads, Path(tmp) / "speed")
        (Path(tmp) / "costs").mkdir()
        costs = fixed_costs(args.size, Path(tmp) / "costs")
    paper = on_paper(costs, [float(t) for t in args.gpu_seconds.split(",")], [8, 100])
    result = {"photos": [p.name for p in photos], "style": style.name, "size": args.size, "threads": args.threads,
              "throughput": rows, "costs": costs, "on_paper": paper}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.with_suffix(".json").write_text(json.dumps(result, indent=1))
    loop = rows["shell loop of `brushwork stylize`"]["images_per_minute"]
    lines = [f"# batch throughput, {len(photos)} photos x {style.name} at {args.size} px, default preset, "
             f"{args.threads} torch threads per arm", "",
             "| arm | wall s | images / minute | vs shell loop | CPU s / image | load avg before / after |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {name} | {r['seconds']} | {r['images_per_minute']} | {r['images_per_minute'] / loop:.2f}x | "
              f"{r['cpu_seconds_per_image']} | {r['load_before']} / {r['load_after']} |" for name, r in rows.items()]
    lines += ["", f"Fixed costs: network load {costs['network_load_s']} s per worker; PNG encoding "
              f"{costs['encode_png_s'] * 1000:.1f} ms per result in the worker; driver per result: writing it "
              f"{costs['save_png_s'] * 1000:.1f} ms, manifest rewrite "
              + ", ".join(f"{v * 1000:.1f} ms at {k} jobs" for k, v in costs["manifest_rewrite_s"].items())
              + f"; {costs['result_bytes'] / 1000:.0f} kB per {args.size} px result.", "",
              "| assumed GPU s / image (not measured) | GPUs | manifest jobs | GPUs alone / h | driver cap / h | "
              "images / h | limit | storage MB / h |", "|---:|---:|---:|---:|---:|---:|---|---:|"]
    lines += [f"| {r['gpu_seconds_per_image']} | {r['gpus']} | {r['manifest_jobs']} | {r['workers_per_hour']} | "
              f"{r['driver_cap_per_hour']} | {r['images_per_hour']} | {r['limit']} | {r['storage_MB_per_hour']} |"
              for r in paper]
    args.results.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
