#!/usr/bin/env bash
# Everything the speed issue asks of a GPU, in one command for the lent GPU machine (under 10 minutes: the device tool's limit for one command):
#
#   bash benchmarks/gpu_check.sh        # reports in benchmarks/results/speed-cuda-*.md, copies in $OUT
#
# The machine gets only this repository and reaches no package registry: brushwork runs from src/,
# neural-style from the vendored wheel on the machine's own torch and torchvision (see speed.py).
# Stages run most important first, each under its own time limit, so a slow one still leaves the rest.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT" benchmarks/results
export PYTHONUNBUFFERED=1
stage() {  # stage NAME SECONDS ARGS...: one speed.py run with its own report
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)"
    timeout "$limit" python3 benchmarks/speed.py "$@" --out "benchmarks/results/speed-cuda-$name.md"
    cp "benchmarks/results/speed-cuda-$name.md" "$OUT/" 2>/dev/null || true
}
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
    # the targets: a 512 px image at neural-style's 500-iteration quality (first and second image, and
    # the whole process), then ms per iteration at 512 and 1024 px
    stage race 120 --sizes '' --quality-size 512
    # instant styles (issue #9): the bundled Starry Night network's images/s at 1080p and 4K (targets 120
    # and 30 frames/s), eager and compiled (each size compiles in its own process), and 720p video
    echo "== instant (limit 70s)"
    timeout 70 python3 benchmarks/instant_speed.py --model starry --sizes 512,1080p,4k --repeats 20 --warmup 5 \
        --video-frames 30 --out benchmarks/results/instant-speed-cuda.md
    echo "== instant, compiled (limit 90s)"
    timeout 90 python3 benchmarks/instant_speed.py --model starry --compile --sizes 1080p,4k --repeats 20 \
        --warmup 5 --video-frames 0 --out benchmarks/results/instant-speed-cuda-compile.md
    cp benchmarks/results/instant-speed-cuda*.md "$OUT/" 2>/dev/null || true
    stage targets 90 --sizes 512,1024 --precisions bfloat16 --skip-quality
    # the rest of the table: 256 px and 2048 px (must fit in 16 GB); the limits add up to 560 s
    stage sizes 60 --sizes 256,2048 --precisions bfloat16 --skip-quality
    # print size (issue 13): 8192 px within 16 GB of GPU memory, one iteration at full size (in tiles)
    echo "== print size (limit 70s)"
    timeout 70 python3 benchmarks/print_size.py scale --sizes 8192 --max-memory 16G \
        --results benchmarks/results/print-size-cuda.md
    cp benchmarks/results/print-size-cuda.md "$OUT/" 2>/dev/null || true
    # the arbitrary-style network (--fast, WCT) with the bundled decoders and painting
    echo "== arbitrary style (limit 60s)"
    timeout 60 python3 benchmarks/instant_speed.py --fast src/brushwork/assets/starry_night.jpg \
        --sizes 256,512,720p,1080p --repeats 10 --warmup 3 --video-frames 10 --out benchmarks/results/wct-speed-cuda.md
    cp benchmarks/results/wct-speed-cuda.md "$OUT/" 2>/dev/null || true
} 2>&1 | tee "$OUT/gpu_check.log"
