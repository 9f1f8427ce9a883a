"""Training under torchrun (DistributedDataParallel, gloo on the CPU): two processes against one,
a kill and resume, one file per run, and ``jcs reproduce`` with the paper profile under torchrun.

The two-process runs train ``tiny-classifier`` of ``tests/dist_worker.py`` on synthetic images.
Tolerance of "the same weights": |w₂ − w₁| ≤ 1e-6 for every weight after 6 SGD steps (measured:
1.5e-8 on this project's CPU). The only differences are float rounding: two processes sum their
gradients in another order than one (DDP averages the two half-batch means). The model has no
BatchNorm on purpose: with BatchNorm each process normalises with its own half batch unless
``sync_batchnorm=true``, which PyTorch implements for CUDA only, so that case cannot be checked on
a CPU (see jcs.engine.distributed). Each torchrun start costs ~10-20 s of imports on 2 cores.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from jcs.engine import distributed as dd
from jcs.engine.profiles import get_profile, run_fields

pytestmark = pytest.mark.xdist_group("distributed")
REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "dist_worker.py"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
RESULT = "smoke/dist/tiny-classifier.json"
RUN_DIR = "smoke/dist/tiny-classifier/seed0"
WEIGHT_ATOL = 1e-6
TIMEOUT_S = 1500


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", JCS_QUIET="1", JCS_DIST_TIMEOUT_MIN="3",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return env


def _run(cmd: list, expect_ok: bool = True) -> subprocess.CompletedProcess:
    """Run ``cmd``; on timeout SIGTERM first (torchrun then stops its workers, which run in
    sessions of their own), SIGKILL a minute later. ~1 min on an idle 2-core machine; the limit
    leaves room for a machine shared with other jobs."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        raise
    done = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    if expect_ok:
        assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _worker(out: Path, nproc: int, *args: str, expect_ok: bool = True) -> subprocess.CompletedProcess:
    launcher = [sys.executable] if nproc == 1 else TORCHRUN + [str(nproc)]
    return _run(launcher + [str(WORKER), "--out", str(out), *args], expect_ok)


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _files(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same run with one process and with two (torchrun), uninterrupted."""
    base = tmp_path_factory.mktemp("dist")
    _worker(base / "one", 1)
    _worker(base / "two", 2)
    return base


# -------------------------------------------------------------------------- without processes


class _Range(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def test_split_batch_global_and_per_process():
    two = dd.DistContext(rank=0, world_size=2)
    assert dd.split_batch(256, "global", two, 1000) == {"global": 256, "per_process": 128}
    assert dd.split_batch(256, "global", two, 100) == {"global": 100, "per_process": 50}
    assert dd.split_batch(1, "process", dd.DistContext(world_size=4), 50) == {"global": 4,
                                                                              "per_process": 1}
    with pytest.raises(ValueError, match="cannot be split over 4 processes"):
        dd.split_batch(10, "global", dd.DistContext(world_size=4), 50)


def test_sampler_global_batches_do_not_depend_on_the_process_count():
    data, batch = _Range(12), 4
    for epoch in (0, 1):
        one = dd.sampler(data, dd.DistContext(), seed=3)
        one.set_epoch(epoch)
        order = list(one)
        shares = []
        for rank in (0, 1):
            s = dd.sampler(data, dd.DistContext(rank=rank, world_size=2), seed=3)
            s.set_epoch(epoch)
            shares.append(list(s))
        for k in range(len(order) // batch):  # global batch k = rank 0's + rank 1's k-th batch
            per = batch // 2
            union = shares[0][k * per:(k + 1) * per] + shares[1][k * per:(k + 1) * per]
            assert sorted(union) == sorted(order[k * batch:(k + 1) * batch])
    assert order != list(range(12))  # shuffled


def test_sync_batchnorm_on_cpu_says_it_needs_cuda():
    with pytest.raises(ValueError, match="needs CUDA"):
        dd.wrap(torch.nn.BatchNorm2d(2), dd.DistContext(world_size=2), torch.device("cpu"),
                sync_batchnorm=True)


def test_profiles_state_the_batch_scope_and_old_configs_keep_their_hash():
    paper = get_profile("paper")
    assert paper.cls.batch_scope == "global" and paper.seg.batch_scope == "process"
    cpu = run_fields(get_profile("cpu").to_dict(), "segmentation")
    assert "sync_batchnorm" not in cpu and "batch_scope" not in cpu["seg"]  # hash unchanged
    synced = run_fields(get_profile("gpu", {"sync_batchnorm": "true"}).to_dict(), "segmentation")
    assert synced["sync_batchnorm"] is True
    assert run_fields(paper.to_dict(), "segmentation")["seg"]["batch_scope"] == "process"
    with pytest.raises(ValueError, match="batch_scope"):
        get_profile("smoke", {"seg.batch_scope": "node"})


# -------------------------------------------------------------------------- under torchrun


def test_two_processes_give_the_weights_of_one(runs):
    one = json.loads((runs / "one" / RESULT).read_text())
    two = json.loads((runs / "two" / RESULT).read_text())
    assert two["environment"]["distributed"]["world_size"] == 2
    assert two["loss"]["batch_size"] == one["loss"]["batch_size"] == 8
    assert two["loss"]["batch_per_process"] == 4 and one["loss"]["iterations"] == 6
    assert two["loss"]["iteration_loss"] == pytest.approx(one["loss"]["iteration_loss"], rel=1e-5)
    a = _weights(runs / "one" / RUN_DIR / "checkpoint.pt")  # weights after the last epoch
    b = _weights(runs / "two" / RUN_DIR / "checkpoint.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=0, atol=WEIGHT_ATOL), key
    first = one["loss"]["iteration_loss"]
    assert first[-1] < first[0]  # it trained


def test_one_results_file_and_one_checkpoint_per_run(runs):
    two = runs / "two"
    assert _files(two) == sorted([RESULT, f"{RUN_DIR}/best.pt", f"{RUN_DIR}/checkpoint.pt",
                                  f"{RUN_DIR}/model.pt"])  # no per-rank copies, no .tmp left
    dist = json.loads((two / RESULT).read_text())["environment"]["distributed"]
    assert dist["backend"] == "gloo" and dist["batch_scope"] == "global"
    assert [r["rank"] for r in dist["ranks"]] == [0, 1]
    assert all(r["type"] == "cpu" and r["name"] and r["host"] for r in dist["ranks"])


def test_kill_after_an_epoch_then_resume_ends_where_the_uninterrupted_run_ends(runs, tmp_path):
    killed = _worker(tmp_path, 2, "--kill-after", "1", expect_ok=False)
    assert killed.returncode != 0
    assert not (tmp_path / RESULT).exists()
    assert _files(tmp_path) == [f"{RUN_DIR}/best.pt", f"{RUN_DIR}/checkpoint.pt"]
    state = torch.load(tmp_path / RUN_DIR / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1 and len(state["rng_ranks"]) == 2
    _worker(tmp_path, 2, "--resume")
    full = json.loads((runs / "two" / RESULT).read_text())
    resumed = json.loads((tmp_path / RESULT).read_text())
    assert resumed["loss"] == full["loss"] and resumed["metrics"] == full["metrics"]
    a = _weights(runs / "two" / RUN_DIR / "checkpoint.pt")
    b = _weights(tmp_path / RUN_DIR / "checkpoint.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)  # bitwise on the CPU


def test_reproduce_paper_profile_under_torchrun(tmp_path, data_dir):
    """``torchrun -m jcs.cli reproduce --profile paper`` (shrunk to seconds): segmentation takes
    the authors' batch 1 per process; a second call finds the run finished."""
    cmd = TORCHRUN + ["2", "-m", "jcs.cli", "reproduce", "--profile", "paper", "--only",
                      "table7/unet", "--results-dir", str(tmp_path / "results"), "--runs-dir",
                      str(tmp_path / "runs"), "--quiet", "--set", "precision=fp32",
                      "num_workers=0", "seg.size=64", "seg.epochs=1", "seg.max_train=4",
                      "seg.max_eval=2", "seg_eval_size=none", "preview_count=1"]
    first = _run(cmd)
    assert first.stdout.count("done") == 1, first.stdout  # rank 0 reports, once
    result = json.loads((tmp_path / "results/paper/table7/unet.json").read_text())
    dist = result["environment"]["distributed"]
    assert dist["world_size"] == 2 and dist["batch_per_process"] == 1 and dist["global_batch"] == 2
    assert result["loss"]["iterations"] == 2 and result["config"]["world_size"] == 2
    assert _files(tmp_path / "runs") == ["paper/table7/unet/seed0/model.pt"]
    again = _run(cmd)
    assert again.stdout.count("skipped") == 1, again.stdout
