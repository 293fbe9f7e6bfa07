"""Memory layout of the instant network on a CPU: plain NCHW (what InstantStylizer uses) against
channels-last (what it used before), interleaved in one process so the machine's load falls on both alike.

    OMP_NUM_THREADS=1 python benchmarks/instant_layout.py --repeats 3

Reports the median CPU time of the process per image (its own work, whatever else runs on the machine)
and the wall time, for untrained width-16 skip weights in bfloat16 (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


def main() -> None:
    import torch

    from brushwork.feedforward.infer import stylize_tensor
    from brushwork.nets.transformer import TransformerConfig, TransformerNet

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="256x256,512x512,1024x1024,1920x1080")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(16, 5, skip=True)).eval().requires_grad_(False).to(torch.bfloat16)
    layouts = {"nchw": net, "channels_last": TransformerNet(net.config).eval().requires_grad_(False)}
    layouts["channels_last"].load_state_dict(net.state_dict())
    layouts["channels_last"].to(torch.bfloat16, memory_format=torch.channels_last)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); median of {a.repeats}, seconds per image")
    print("| size | NCHW CPU s | channels-last CPU s | ratio | NCHW wall s | channels-last wall s |\n|---|---|---|---|---|---|")
    for size in a.sizes.split(","):
        w, h = map(int, size.split("x"))
        x = torch.rand(1, 3, h, w) * 255
        cpu = {k: [] for k in layouts}
        wall = {k: [] for k in layouts}
        for n in layouts.values():
            stylize_tensor(n, x)  # warm
        for _ in range(a.repeats):
            for k, n in layouts.items():
                t, c = time.perf_counter(), time.process_time()
                stylize_tensor(n, x)
                wall[k].append(time.perf_counter() - t)
                cpu[k].append(time.process_time() - c)
        m = {k: (statistics.median(cpu[k]), statistics.median(wall[k])) for k in layouts}
        print(f"| {size} | {m['nchw'][0]:.3f} | {m['channels_last'][0]:.3f} | {m['nchw'][0] / m['channels_last'][0]:.2f} "
              f"| {m['nchw'][1]:.2f} | {m['channels_last'][1]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
