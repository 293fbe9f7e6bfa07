#!/usr/bin/env python3
"""Replace one level's decoder in a `brushwork train-decoders` file with the same level from another file.

How the bundled decoders were made (README, "Any painting in one pass"), in two stages. First (ninth
session) the relu1_1 decoder, one convolution, painted better at step 800 of the run than at its end, so the
run was stopped at 800, its file copied aside, and resumed to 6000:

    brushwork train-decoders --photos photos/ -o decoders.safetensors --steps 800
    cp decoders.safetensors decoders-800.safetensors
    brushwork train-decoders --photos photos/ -o decoders.safetensors --steps 6000 --resume
    python scripts/splice_decoders.py decoders.safetensors --level 1 --take decoders-800.safetensors \
        -o src/brushwork/assets/wct-decoders.safetensors

The header keeps the run's training record and says which step the spliced level came from. Then (fourteenth
session) that file's relu3_1 and relu4_1 decoders were fine-tuned on whitened and coloured features, and the
result bundled in its place (its header records the first stage's sha256, c8bc2538...; the run said `--fine-tune
bundled`, which was then the first stage's file, git show 3f9c963:src/brushwork/assets/wct-decoders.safetensors):

    brushwork train-decoders --photos photos/ -o decoders-s14.safetensors --fine-tune decoders-s9.safetensors \
        --train-levels 3,4 --transfer 0.5 --steps 6000 --batch 2 --crop 256 --lr 3e-4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from brushwork.feedforward.modelfile import read_file, save_model  # noqa: E402
from brushwork.feedforward.wct import load_decoders  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("decoders", type=Path, help="the run's final decoder file")
    p.add_argument("--level", type=int, required=True, help="the level to replace (1 = relu1_1)")
    p.add_argument("--take", type=Path, required=True, help="the decoder file to take that level from")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()

    net, donor = load_decoders(args.decoders), load_decoders(args.take)
    prefix = f"decoders.{args.level - 1}."
    state = net.state_dict()
    state.update({k: v for k, v in donor.state_dict().items() if k.startswith(prefix)})
    net.load_state_dict(state)
    training = dict(read_file(args.decoders)[0]["training"])
    training[f"relu{args.level}_1_decoder_from_step"] = read_file(args.take)[0]["training"]["steps_done"]
    print(save_model(net, args.output, styles=[], training=training))


if __name__ == "__main__":
    main()
