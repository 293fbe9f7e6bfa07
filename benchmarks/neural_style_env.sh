#!/usr/bin/env bash
# Create (or reuse) a separate virtual environment holding the baseline tool
# neural-style 0.5.7 (PyPI `neural-style`, the PyTorch port of jcjohnson/neural-style)
# and convert brushwork's VGG16 Caffe weights into a file that neural-style loads.
#
#   bash benchmarks/neural_style_env.sh            # venv at <repo>/.ns-venv (gitignored)
#   NS_VENV=/some/where bash benchmarks/neural_style_env.sh
#
# Environment variables:
#   NS_VENV     venv path (default: <repo root>/.ns-venv)
#   NS_PYTHON   interpreter used to create the venv (default: python3)
#   NS_WEIGHTS  source weights (default: /work/shared/weights/vgg16-caffe.safetensors,
#               falling back to src/brushwork/assets/vgg16-caffe.safetensors)
#   NS_MODEL    converted model path (default: $NS_VENV/models/vgg16-caffe-brushwork.pth)
#   NS_FORCE=1  reinstall the packages even if the venv already works
#
# Idempotent: if the venv already imports the pinned versions and the converted model
# exists, it does nothing. The torch 2.14.1 wheel is the large CUDA build (~5.5 GB
# installed, plus its nvidia-* wheels): expected; the same venv then runs on CPU and CUDA.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
NS_VENV="${NS_VENV:-$ROOT/.ns-venv}"
NS_PYTHON="${NS_PYTHON:-python3}"
TORCH_VER=2.14.1
TV_VER=0.29.1
NS_VER=0.5.7

if [[ -z "${NS_WEIGHTS:-}" ]]; then
    if [[ -f /work/shared/weights/vgg16-caffe.safetensors ]]; then
        NS_WEIGHTS=/work/shared/weights/vgg16-caffe.safetensors
    else
        NS_WEIGHTS="$ROOT/src/brushwork/assets/vgg16-caffe.safetensors"
    fi
fi
NS_MODEL="${NS_MODEL:-$NS_VENV/models/vgg16-caffe-brushwork.pth}"
PY="$NS_VENV/bin/python"

venv_ok() {
    [[ -x "$PY" ]] || return 1
    "$PY" - "$TORCH_VER" "$TV_VER" "$NS_VER" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
# not neural_style.neural_style: that module runs its argparse at import time
import torch, torchvision, neural_style.loader.CaffeLoader  # noqa: F401
want_torch, want_tv, want_ns = sys.argv[1:4]
ok = (torch.__version__.split("+")[0] == want_torch
      and torchvision.__version__.split("+")[0] == want_tv
      and version("neural-style") == want_ns)
sys.exit(0 if ok else 1)
EOF
}

if [[ "${NS_FORCE:-0}" != 1 ]] && venv_ok; then
    echo "neural_style_env: $NS_VENV already has torch $TORCH_VER, torchvision $TV_VER, neural-style $NS_VER"
else
    if [[ ! -x "$PY" ]]; then
        echo "neural_style_env: creating venv $NS_VENV"
        "$NS_PYTHON" -m venv "$NS_VENV"
    fi
    echo "neural_style_env: installing torch==$TORCH_VER torchvision==$TV_VER neural-style==$NS_VER (large download)"
    "$PY" -m pip install --upgrade pip >/dev/null 2>&1 || true
    "$PY" -m pip install "torch==$TORCH_VER" "torchvision==$TV_VER" "neural-style==$NS_VER"
    venv_ok || { echo "neural_style_env: venv check failed after install" >&2; exit 1; }
fi

if [[ "${NS_FORCE:-0}" != 1 && -s "$NS_MODEL" ]]; then
    echo "neural_style_env: model already converted: $NS_MODEL"
else
    mkdir -p "$(dirname "$NS_MODEL")"
    "$PY" "$HERE/ns_baseline.py" convert --src "$NS_WEIGHTS" --dst "$NS_MODEL"
fi

echo "neural_style_env: ready"
echo "  python: $PY"
echo "  model:  $NS_MODEL"
