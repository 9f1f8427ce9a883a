"""Add ``cpu_features`` / ``cpu_capability`` to the ``environment.device`` of results files written
before :func:`jcs.engine.provenance.device_info` recorded them (2026-11-30), where the machine can
be told from what the file does record; every added value is marked as inferred.

Why: two VMs of this project call themselves "AMD EPYC" and differ fivefold in training speed. A
file records the CPU model name and the training precision that ``precision="auto"`` resolved to
(bf16 autocast only where oneDNN has native bf16 kernels, :func:`jcs.inference.bf16_supported`):

* "AMD EPYC" + fp32: a CPU without native bf16, so an EPYC before Zen 4, which has no AVX-512 and
  no VNNI: AVX2 (results/diagnostics/ctmd_adabn_probe.json and the session notes of 2026-11-28/29
  name it: family 25 model 1, AVX2, no AVX-512/AMX/VNNI).
* "AMD EPYC" + bf16: an EPYC with AVX512-BF16 (Zen 4); the only such machine of this project is
  the one of 2026-11-30, whose features were read on it (:data:`ZEN4_FEATURES`).

``jcs bench`` files are read the same way, with ``provenance.bf16_native`` (what
:func:`jcs.inference.bf16_supported` said) for the precision. Files of other CPUs (the Intel Xeon
of 2026-11-25..27) are left as they are: their label stays the plain model name. ``python scripts/backfill_cpu_features.py [--results results] [--dry-run]``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

#: read with torch.cpu.get_capabilities() on the 2-core AMD EPYC (family 25 model 17) of 2026-11-30
ZEN4_FEATURES = ["avx2", "avx512_f", "avx512_bf16", "avx512_vnni"]
NOTE = ("inferred on 2026-11-30 by scripts/backfill_cpu_features.py from the CPU name and the "
        "precision that precision='auto' resolved to ({rule})")


def inferred(env: dict) -> dict | None:
    """The fields to add to ``env["device"]``, or None when the machine cannot be told."""
    device = env.get("device") or {}
    if device.get("type") != "cpu" or "cpu_features" in device or device.get("cpu") != "AMD EPYC":
        return None
    if env.get("precision") == "fp32":
        return {"cpu_features": ["avx2"], "cpu_capability": "AVX2",
                "cpu_features_source": NOTE.format(rule="AMD EPYC + fp32: before Zen 4, AVX2 only")}
    if env.get("precision") == "bf16":
        return {"cpu_features": list(ZEN4_FEATURES), "cpu_capability": "AVX512",
                "cpu_features_source": NOTE.format(rule="AMD EPYC + bf16: the Zen 4 VM of 2026-11-30")}
    return None


def _machine(data) -> dict | None:
    """``{"device": <the file's device dict, updated in place>, "precision": ...}`` of a results
    file (``environment``; None when its profile forced a precision, which says nothing about the
    CPU) or a ``jcs bench`` file (``device`` beside ``provenance.bf16_native``, what
    :func:`jcs.inference.bf16_supported` said); None for anything else."""
    if not isinstance(data, dict):
        return None
    if "config" in data:
        env = data.get("environment") or {}
        if (data["config"].get("profile") or {}).get("precision", "auto") != "auto":
            return None
        return env if isinstance(env.get("device"), dict) else None
    native = (data.get("provenance") or {}).get("bf16_native")
    if isinstance(data.get("device"), dict) and native is not None:
        return {"device": data["device"], "precision": "bf16" if native else "fp32"}
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    changed = 0
    for path, indent in ([(p, 1) for p in sorted(Path(args.results).glob("*/*/*.json"))]
                         + [(p, 2) for p in sorted(Path(args.results).glob("bench/*.json"))]):
        data = json.loads(path.read_text(encoding="utf-8"))
        machine = _machine(data)
        extra = inferred(machine) if machine else None
        if extra is None:
            continue
        machine["device"].update(extra)
        changed += 1
        print(f"{path}: {extra['cpu_features']}")
        if not args.dry_run:
            path.write_text(json.dumps(data, indent=indent) + "\n", encoding="utf-8")
    print(f"{changed} file(s) {'would change' if args.dry_run else 'changed'}")


if __name__ == "__main__":
    main()
