"""Load on `brushwork ui`: N concurrent sessions on loopback, each with its own photo, through gradio_client.

Starts `brushwork ui` as its own process (as a user would), sends every session's job at once, and
checks that each session got its own painting back (by content: the jobs keep the photo's colours, and
of all the photos sent, the result's coarse colour layout is closest to its own), counts errors, times each job from submission (queue wait included) and samples the
server's resident memory; after the sessions close, counts what is left in the server's temporary root.

    python benchmarks/ui_load.py --sessions 50 --rounds 2 --size 64 --iterations 5   # the optimiser
    python benchmarks/ui_load.py --sessions 50 --size 256 --mode Instant --model NAME   # once a model exists

Writes benchmarks/results/ui-load.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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


def one_round(url: str, args: argparse.Namespace, work: Path, first: int, pid: int) -> tuple[dict, list[dict]]:
    """`args.sessions` clients at once, sessions numbered from `first`; then they close. Returns the
    round's figures and one row per session."""
    from gradio_client import Client, handle_file

    width, height = map(int, args.photo_size.split("x"))
    ids = range(first, first + args.sessions)
    photos = {i: photo(work / f"photo{i}.png", i, width, height) for i in ids}
    clients = {i: Client(url, verbose=False) for i in ids}
    samples = [rss_mb(pid)[0]]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            samples.append(rss_mb(pid)[0])
            time.sleep(0.2)

    def run(i: int) -> dict:
        start = time.perf_counter()
        try:
            # keep the photo's colours: the check by content below reads them
            job = clients[i].submit(handle_file(str(work / f"photo{i}.png")), "The Starry Night (van Gogh)", None,
                                    args.mode, args.model, args.size, 2, True, args.iterations, i, api_name="/paint")
            final, status, _ = job.result(timeout=3600)
            return {"session": i, "seconds": time.perf_counter() - start, "result": final, "status": status}
        except Exception as exc:  # noqa: BLE001 - counted and reported
            return {"session": i, "seconds": time.perf_counter() - start, "error": f"{type(exc).__name__}: {exc}"}

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.sessions) as pool:
        rows = list(pool.map(run, ids))
    wall = time.perf_counter() - t0
    sampling.set()
    sampler.join()
    own = 0  # each result must be closest to its own photo among all the photos of the round
    for row in rows:
        if "result" not in row:
            continue
        out = coarse(Image.open(row["result"]).convert("RGB"))
        distances = {j: float(np.abs(coarse(Image.fromarray(ph.astype(np.uint8))) - out).mean())
                     for j, ph in photos.items()}
        row["own_distance"] = distances[row["session"]]
        row["nearest_other"] = min(d for j, d in distances.items() if j != row["session"])
        own += min(distances, key=distances.get) == row["session"]
    for c in clients.values():
        c.close()
    sessions = next((work / "tmp").glob("brushwork-ui-*/sessions"), None)
    deadline = time.monotonic() + 60  # closed clients end their sessions: their folders are deleted
    while time.monotonic() < deadline and sessions is not None and any(sessions.iterdir()):
        time.sleep(0.5)
    seconds = sorted(r["seconds"] for r in rows if "error" not in r)
    summary = {
        "sessions": args.sessions, "errors": sum("error" in r for r in rows), "own_result": own,
        "wall_s": round(wall, 1), "median_s": round(statistics.median(seconds), 2) if seconds else None,
        "p95_s": round(seconds[int(0.95 * (len(seconds) - 1))], 2) if seconds else None,
        "max_s": round(seconds[-1], 2) if seconds else None, "jobs_per_s": round(len(seconds) / wall, 2),
        "rss_start_mb": round(samples[0]), "rss_peak_mb": round(max(samples)), "rss_after_mb": round(rss_mb(pid)[0]),
        "session_folders_left": len(list(sessions.iterdir())) if sessions is not None else 0,
        "own_distance_max": round(max((r["own_distance"] for r in rows if "own_distance" in r), default=0), 1),
        "nearest_other_min": round(min((r["nearest_other"] for r in rows if "nearest_other" in r), default=0), 1),
        "load_1min": round(os.getloadavg()[0], 1),
    }
    return summary, rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=50)
    p.add_argument("--rounds", type=int, default=2, help="rounds of --sessions, one after the other: memory that "
                                                         "is bounded does not grow from one to the next")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--mode", default="Best quality", choices=["Best quality", "Instant"])
    p.add_argument("--model", help="instant style's name (Instant mode)")
    p.add_argument("--jobs", type=int, default=1, help="the server's --jobs")
    p.add_argument("--photo-size", default="96x64", help="WxH of the photos sent")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/ui-load"))
    args = p.parse_args()

    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="ui-load-"))
    (work / "tmp").mkdir()
    # the server's temporary root lands in our own folder, so what it leaves behind can be counted
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TMPDIR": str(work / "tmp")}
    server = subprocess.Popen([sys.executable, "-m", "brushwork.cli", "ui", "--port", str(port), "--jobs",
                               str(args.jobs)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    rounds, rows = [], []
    try:
        url = server.stdout.readline().split()[-1]
        for r in range(args.rounds):
            summary, round_rows = one_round(url, args, work, r * args.sessions, server.pid)
            rounds.append({"round": r + 1, **summary})
            rows += round_rows
            print(rounds[-1], flush=True)
        peak = rss_mb(server.pid)[1]
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)

    setup = {"mode": args.mode, "model": args.model, "size": args.size, "iterations": args.iterations,
             "jobs": args.jobs, "photo": args.photo_size, "cpus": os.cpu_count(), "server_peak_rss_mb": round(peak)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"setup": setup, "rounds": rounds, "rows": rows}, indent=1))
    lines = [f"# brushwork ui under load: {args.rounds} x {args.sessions} concurrent sessions\n",
             f"`python benchmarks/ui_load.py {' '.join(sys.argv[1:])}`\n",
             ", ".join(f"{k} {v}" for k, v in setup.items()) + "\n",
             "| " + " | ".join(rounds[0]) + " |", "|" + "---|" * len(rounds[0]),
             *("| " + " | ".join(str(v) for v in r.values()) + " |" for r in rounds)]
    errors = [r for r in rows if "error" in r]
    if errors:
        lines += ["", "Errors:", *[f"- session {r['session']}: {r['error']}" for r in errors]]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
