"""Does DSS need He init in its VGG16 body? One seed of DSS trained with the engine's full recipe
of a profile (default ``cpu``, Table VII) with everything of the current model code (scale-
preserving heads, model revision 3) except the body, which starts with PyTorch's default conv init
(:class:`jcs.models.vgg.VGG16Body` ``init="pytorch"``) instead of He init.

The run is written to ``results/diagnostics/dss_default_body_init_seed<seed>.json`` (its
predictions beside it) with ``variant`` and ``diagnostic_note``, so that
:func:`jcs.report.withdrawn.withdrawn_notes` names it under Table VII next to the committed seed,
outside every mean. Its config records ``model_variant`` so that it can never pass for a run of the
current code. Checkpoints go to a temporary folder (not kept).

    python scripts/probe_dss_body_init.py --seed 0
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import jcs.models.dss as dss_module
from jcs.engine.profiles import config_hash, get_profile
from jcs.engine.results import predictions_dir, write_result
from jcs.models.vgg import VGG16Body

VARIANT = ("PyTorch's default init of its VGG16 body instead of He init (a probe; DSS keeps He "
           "init)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--results-dir", default="results")
    args = parser.parse_args()
    if get_profile(args.profile).pretrained:
        parser.error(f"profile {args.profile} loads pretrained weights over the body: the probe "
                     "would measure nothing; use a from-scratch profile (cpu, gpu, smoke)")
    # DSS builds its body as VGG16Body(norm="none", init="kaiming"): force the default instead
    dss_module.VGG16Body = _default_body
    assert dss_module.DSS().body.init == "pytorch"
    from jcs.engine.train import train

    out = Path(args.results_dir) / "diagnostics" / f"dss_default_body_init_seed{args.seed}.json"
    with tempfile.TemporaryDirectory() as tmp:
        result = train("dss", profile=args.profile, experiment="table7", seed=args.seed,
                       results_dir=tmp, runs_dir=tmp, name="dss")
        assert result["config"]["model_revision"] == 3
        predictions = predictions_dir(out)
        shutil.rmtree(predictions, ignore_errors=True)
        shutil.copytree(result["predictions"], predictions)
    result["config"]["model_variant"] = "body-init-pytorch"
    result["config_hash"] = config_hash(result["config"])  # the hash of the config it records
    result["predictions"] = str(predictions)
    result["checkpoint"] = None
    result["variant"] = VARIANT
    dice = float(result["metrics"]["dice"])
    result["diagnostic_note"] = (
        f"Probe (scripts/probe_dss_body_init.py): DSS seed {args.seed} of profile {args.profile} "
        f"with the current model code (revision 3: scale-preserving heads) but PyTorch's default "
        f"conv init in its plain VGG16 body instead of He init (without the He draws the random "
        f"stream, and so the heads' initial weights, differ too). Dice {dice:.3f} at 0.5. "
        "Not a result of any current profile.")
    write_result(out, result)
    print(json.dumps({"out": str(out), "dice": dice}))


def _default_body(norm: str = "none", init: str = "pytorch") -> VGG16Body:
    return VGG16Body(norm=norm, init="pytorch")


if __name__ == "__main__":
    main()
