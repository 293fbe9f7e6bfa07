"""Load on `brushwork ui`: N concurrent sessions on loopback, each with its own photo, through gradio_client.

Starts `brushwork ui` as its own process (as a user would), sends every session's job at once, and
checks that each session got its own painting back (by content: the jobs keep the photo's colours, and
of all the photos sent, the result's coarse colour layout is closest to its own), counts errors, times each job from submission (queue wait included) and samples the
server's resident memory; after the sessions close, counts what is left in the server's temporary root.

    python benchmarks/ui_load.py --sessions 50 --size 64 --iterations 5       # the optimiser
    python benchmarks/ui_load.py --sessions 50 --size 256 --mode Instant --model NAME   # once a model exists

Writes benchmarks/results/ui-load.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) of a process, MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    now, peak = (int(re.search(rf"{k}:\s+(\d+)", status)[1]) / 1024 for k in ("VmRSS", "VmHWM"))
    return now, peak


def photo(path: Path, seed: int, width: int, height: int) -> np.ndarray:
    """A smooth random picture, one per session, so results can be told apart by content."""
    rng = np.random.default_rng(seed)
    small = (rng.random((3, 4, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(small).resize((width, height), Image.BICUBIC)
    img.save(path)
    return np.asarray(img, dtype=np.float32)


def coarse(img: Image.Image) -> np.ndarray:
    """The colours (Cb, Cr) of the picture's layout at 8x6: the jobs keep the photo's colours, so each
    result carries its own photo's colours where they were, whatever the painting did to the texture."""
    return np.asarray(img.convert("YCbCr").resize((8, 6), Image.BOX), dtype=np.float32)[..., 1:]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=50)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--mode", default="Best quality", choices=["Best quality", "Instant"])
    p.add_argument("--model", help="instant style's name (Instant mode)")
    p.add_argument("--jobs", type=int, default=1, help="the server's --jobs")
    p.add_argument("--photo-size", default="96x64", help="WxH of the photos sent")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/ui-load"))
    args = p.parse_args()
    from gradio_client import Client, handle_file

    width, height = map(int, args.photo_size.split("x"))
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="ui-load-"))
    (work / "tmp").mkdir()
    # the server's temporary root lands in our own folder, so what it leaves behind can be counted
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TMPDIR": str(work / "tmp")}
    server = subprocess.Popen([sys.executable, "-m", "brushwork.cli", "ui", "--port", str(port), "--jobs",
                               str(args.jobs)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    url = server.stdout.readline().split()[-1]
    samples: list[float] = []
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.is_set():
            samples.append(rss_mb(server.pid)[0])
            time.sleep(0.2)

    try:
        rss_idle = rss_mb(server.pid)[0]
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        photos = [photo(work / f"photo{i}.png", i, width, height) for i in range(args.sessions)]
        clients = [Client(url, verbose=False) for _ in range(args.sessions)]

        def run(i: int) -> dict:
            start = time.perf_counter()
            try:
                job = clients[i].submit(handle_file(str(work / f"photo{i}.png")), "The Starry Night (van Gogh)", None,
                                        args.mode, args.model, args.size, 2, True, args.iterations, i,
                                        api_name="/paint")
                final, status, _ = job.result(timeout=3600)
                return {"session": i, "seconds": time.perf_counter() - start, "result": final, "status": status}
            except Exception as exc:  # noqa: BLE001 - counted and reported
                return {"session": i, "seconds": time.perf_counter() - start, "error": f"{type(exc).__name__}: {exc}"}

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.sessions) as pool:
            rows = list(pool.map(run, range(args.sessions)))
        wall = time.perf_counter() - t0
        stop_sampling.set()
        sampler.join()
        rss_busy_peak = max(samples)
        # each result must be closest to its own photo among all the photos sent
        own = 0
        for row in rows:
            if "result" not in row:
                continue
            out = coarse(Image.open(row["result"]).convert("RGB"))
            distances = [float(np.abs(coarse(Image.fromarray(ph.astype(np.uint8))) - out).mean()) for ph in photos]
            row["nearest"] = int(np.argmin(distances))
            others = [d for j, d in enumerate(distances) if j != row["session"]]
            row["own_distance"], row["nearest_other"] = distances[row["session"]], min(others)
            own += row["nearest"] == row["session"]
        for c in clients:
            c.close()
        root = next((work / "tmp").glob("brushwork-ui-*/sessions"), None)
        deadline = time.monotonic() + 60  # closed clients end their sessions: folders are deleted
        while time.monotonic() < deadline and root is not None and any(root.iterdir()):
            time.sleep(0.5)
        left = sorted(root.iterdir()) if root is not None else []
        rss_after, rss_peak = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)

    errors = [r for r in rows if "error" in r]
    seconds = sorted(r["seconds"] for r in rows if "error" not in r)
    summary = {
        "sessions": args.sessions, "mode": args.mode, "model": args.model, "size": args.size,
        "iterations": args.iterations, "jobs": args.jobs, "photo": args.photo_size, "errors": len(errors),
        "own_result": own, "wall_s": round(wall, 1), "median_s": round(statistics.median(seconds), 2) if seconds else None,
        "p95_s": round(seconds[int(0.95 * (len(seconds) - 1))], 2) if seconds else None,
        "max_s": round(seconds[-1], 2) if seconds else None,
        "jobs_per_s": round(len(seconds) / wall, 2),
        "rss_idle_mb": round(rss_idle), "rss_busy_peak_mb": round(rss_busy_peak), "rss_peak_mb": round(rss_peak),
        "rss_after_mb": round(rss_after), "session_folders_left": len(left),
        "own_distance_max": round(max((r["own_distance"] for r in rows if "own_distance" in r), default=0), 1),
        "nearest_other_min": round(min((r["nearest_other"] for r in rows if "nearest_other" in r), default=0), 1),
        "cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    lines = [f"# brushwork ui under load: {args.sessions} concurrent sessions\n",
             f"`python benchmarks/ui_load.py {' '.join(sys.argv[1:])}`\n",
             "| " + " | ".join(summary) + " |", "|" + "---|" * len(summary),
             "| " + " | ".join(str(v) for v in summary.values()) + " |"]
    if errors:
        lines += ["", "Errors:", *[f"- session {r['session']}: {r['error']}" for r in errors]]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
