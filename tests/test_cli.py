"""The ``jcs`` command line: help, data and model listings, user errors (exit 2, message listing
the valid names, no traceback), diagnose, and train + evaluate end to end. Commands run in-process
through ``main(argv)``; one test runs the installed console script."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jcs.models import list_models
from conftest import run_cli as run


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("argv", [[], ["data"], ["data", "verify"], ["models"], ["train"],
                                  ["evaluate"], ["diagnose"], ["bench"], ["flops"], ["reproduce"]])
def test_help_everywhere(capsys, argv):
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0 and "usage: jcs" in out


def test_data_list(capsys, data_dir):
    code, out, _ = run(capsys, "data", "list", "--root", data_dir)
    assert code == 0
    for name in ("medseg", "ucsd-covid-ct", "covid-ct-md", "sarscov2-ct", "covid-cs"):
        assert name in out
    assert "present" in out


def test_data_verify_medseg(capsys, data_dir):
    code, out, _ = run(capsys, "data", "verify", "medseg", "--root", data_dir)
    assert code == 0 and "0 missing, 0 mismatched" in out


def test_models_lists_every_model_with_parameters(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == len(list_models())
    jcs_line = next(line for line in lines if line.startswith("jcs-classifier "))
    assert "43.06 M" in jcs_line


@pytest.mark.parametrize("argv, expected", [
    (["train", "--model", "jcs-nope", "--profile", "smoke"], "jcs-seg, jcs-seg-aff"),
    (["train", "--model", "jcs-seg", "--profile", "fast"], "paper, gpu, cpu, cpu-pretrained, smoke"),
    (["train", "--model", "jcs-seg", "--profile", "smoke", "--dataset", "lidc"], "medseg, covid-semiseg"),
    (["train", "--model", "jcs-seg", "--profile", "smoke", "--set", "seg.nope=1"], "valid keys"),
    (["data", "verify", "nope"], "medseg"),
    (["diagnose", "x", "--out", "y", "--classifier-model", "jcs-seg"], "jcs-classifier-res2net50"),
    (["bench", "--models", "resnet"], "unet-bilinear"),
    (["bench", "--patient-only", "--no-patient"], "drop one of them"),
])
def test_user_errors_exit_2_and_list_valid_names(capsys, argv, expected):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert expected in err and "Traceback" not in err + out


def test_missing_data_says_how_to_get_it(capsys, tmp_path):
    code, _, err = run(capsys, "data", "verify", "medseg", "--root", tmp_path)
    assert code == 2 and "jcs data fetch medseg" in err
    code, _, err = run(capsys, "train", "--model", "jcs-seg", "--profile", "smoke", "--dataset", "medseg",
                       "--data-dir", tmp_path, "--results-dir", tmp_path / "r", "--runs-dir", tmp_path / "k")
    assert code == 2 and "jcs data fetch medseg" in err


def test_missing_inputs_of_diagnose_and_evaluate(capsys, tmp_path):
    code, _, err = run(capsys, "diagnose", tmp_path / "no_patient", "--out", tmp_path / "o")
    assert code == 2 and "no_patient" in err
    code, _, err = run(capsys, "diagnose", tmp_path, "--out", tmp_path / "o", "--classifier", tmp_path / "c.pt")
    assert code == 2 and "c.pt" in err and "not found" in err
    code, _, err = run(capsys, "diagnose", tmp_path, tmp_path / "typo", "--out", tmp_path / "o")
    assert code == 2 and "no such volume" in err and "typo" in err
    assert not (tmp_path / "o").exists()  # refused before anything was loaded or written
    code, _, err = run(capsys, "evaluate", "--checkpoint", tmp_path / "model.pt")
    assert code == 2 and "jcs train" in err


def test_diagnose_without_trained_weights_refuses_and_says_how_to_get_them(capsys, data_dir,
                                                                           tmp_path):
    patient = data_dir / "covid_ct_md_sample" / "COVID-19" / "P002"
    code, stdout, err = run(capsys, "diagnose", patient, "--out", tmp_path / "o")
    assert code == 2 and "Traceback" not in err + stdout
    assert "--classifier CKPT and --segmenter CKPT" in err
    assert "jcs train --model jcs-classifier" in err and "--random-weights" in err
    code, _, err = run(capsys, "diagnose", patient, "--out", tmp_path / "o", "--no-segment")
    assert code == 2 and "--classifier CKPT." in err and "--segmenter CKPT" not in err
    assert not (tmp_path / "o").exists()


def test_diagnose_png_patient(capsys, data_dir, tmp_path):
    out = tmp_path / "report"
    code, stdout, stderr = run(capsys, "diagnose", data_dir / "covid_ct_md_sample" / "COVID-19" / "P002",
                               "--out", out, "--classifier-model", "jcs-classifier-res2net50",
                               "--size", 64, "--seg-size", 64, "--top-k", 2, "--precision", "fp32",
                               "--random-weights")
    assert code == 0, stderr
    assert "MEANINGLESS" in stderr and "MEANINGLESS" in stdout
    verdict = stdout.splitlines()[0]
    assert verdict.startswith("COVID-19 ") and "RANDOM WEIGHTS in the classifier and segmenter" in verdict
    assert "% of the lungs" in stdout and "None" not in stdout
    assert "of 133 slices" in stdout and "report.html" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_slices"] == 133 and summary["precision"] == "fp32"
    assert (out / "report.html").is_file()


def test_diagnose_with_the_efficientnet_classifier(capsys, data_dir, tmp_path):
    """The EfficientNet-Lite2 classifier (the pretrained stand-in of cpu-pretrained) runs the
    whole diagnosis: its input normalisation and Grad-CAM on its last convolutional stage."""
    out = tmp_path / "report"
    code, stdout, stderr = run(capsys, "diagnose", data_dir / "covid_ct_md_sample" / "COVID-19" / "P002",
                               "--out", out, "--classifier-model", "jcs-classifier-efficientnet-lite2",
                               "--size", 64, "--top-k", 2, "--precision", "fp32", "--no-segment",
                               "--random-weights")
    assert code == 0, stderr
    assert "MEANINGLESS" in stderr and "of 133 slices" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"]["classifier"]["name"] == "jcs-classifier-efficientnet-lite2"
    assert summary["n_slices"] == 133 and (out / "report.html").is_file()


def test_diagnose_several_patients_writes_an_index_and_exits_1_on_a_bad_one(capsys, data_dir,
                                                                           tmp_path):
    (tmp_path / "empty").mkdir()
    code, stdout, stderr = run(capsys, "diagnose", data_dir / "covid_ct_md_sample" / "COVID-19" / "P002",
                               tmp_path / "empty", "--out", tmp_path / "out", "--quiet",
                               "--classifier-model", "jcs-classifier-res2net50", "--size", 64,
                               "--seg-size", 64, "--top-k", 2, "--random-weights")
    assert code == 1, stderr
    assert "P002: COVID-19" in stdout and "empty: not diagnosed" in stdout
    assert "1 of 2 patients diagnosed" in stdout
    assert (tmp_path / "out" / "P002" / "report.html").is_file()
    assert (tmp_path / "out" / "index.html").is_file() and (tmp_path / "out" / "patients.csv").is_file()


def test_diagnose_prints_the_reader_warnings_and_a_missing_lung_mask(capsys, realworld_dir,
                                                                     tmp_path):
    """A series without rescale (no air below -400 HU): the warnings are printed, and the lung
    share says the lung mask was not found instead of "None%"."""
    out = tmp_path / "report"
    code, stdout, stderr = run(capsys, "diagnose", realworld_dir / "dcm-no-rescale", "--out", out,
                               "--classifier-model", "jcs-classifier-res2net50", "--size", 64,
                               "--seg-size", 64, "--top-k", 2, "--random-weights")
    assert code == 0, stderr
    assert "lung mask not found" in stdout and "None" not in stdout
    assert "WARNING: " in stdout and "RescaleIntercept" in stdout and "Lung mask not found" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert any("RescaleIntercept" in w for w in summary["volume_warnings"])
    assert summary["lesion"]["lung_mask_found"] is False and summary["lesion"]["percent_of_lung"] is None
    html = (out / "report.html").read_text()
    assert html.index("RescaleIntercept") < html.index('class="verdict"')  # at the top
    assert "lung mask not found" in html


def test_diagnose_the_pyradiomics_chest_cts(capsys, pyradiomics_lungs, tmp_path):
    """`jcs diagnose` on the two real chest CTs of the pyradiomics 3.0.1 archive (NRRD, HU, 5 mm
    slices), random-weights demo at tiny sizes: both read and diagnosed, with lungs found."""
    lungs = [pyradiomics_lungs / "lung1_image.nrrd", pyradiomics_lungs / "lung2_image.nrrd"]
    code, stdout, stderr = run(capsys, "diagnose", *lungs, "--out", tmp_path / "out", "--quiet",
                               "--classifier-model", "jcs-classifier-res2net50", "--size", 64,
                               "--seg-size", 64, "--top-k", 2, "--random-weights")
    assert code == 0, stderr
    assert "2 of 2 patients diagnosed" in stdout
    for name, slices in (("lung1_image", 48), ("lung2_image", 61)):
        summary = json.loads((tmp_path / "out" / name / "summary.json").read_text())
        assert summary["n_slices"] == slices and summary["unit"] == "HU"
        assert summary["spacing_mm"][0] == 5.0 and summary["volume_warnings"] == []
        assert summary["rule"]["basis"] == "thickness"
        assert summary["lesion"]["lung_mask_found"] and summary["lesion"]["lung_volume_ml"] > 1000
        assert "RANDOM WEIGHTS" in summary["verdict"]


def test_train_then_evaluate_end_to_end(capsys, data_dir, tmp_path):
    results, runs = tmp_path / "results", tmp_path / "runs"
    code, out, err = run(capsys, "train", "--model", "jcs-seg-base", "--dataset", "medseg", "--profile",
                         "smoke", "--results-dir", results, "--runs-dir", runs, "--quiet",
                         "--data-dir", data_dir)
    assert code == 0, err
    result_file = results / "smoke" / "default" / "jcs-seg-base.json"
    checkpoint = runs / "smoke" / "default" / "jcs-seg-base" / "seed0" / "model.pt"
    assert result_file.is_file() and checkpoint.is_file()
    assert str(result_file) in out and '"dice"' in out

    metrics_file = tmp_path / "eval.json"
    code, out, err = run(capsys, "evaluate", "--checkpoint", checkpoint, "--dataset", "medseg",
                         "--max-images", 2, "--save-predictions", tmp_path / "pred",
                         "--out", metrics_file, "--data-dir", data_dir)
    assert code == 0, err
    evaluation = json.loads(metrics_file.read_text())
    assert evaluation["n_images"] == 2 and evaluation["model"] == "jcs-seg-base"
    assert 0 <= evaluation["metrics"]["dice"] <= 1
    assert len(list((tmp_path / "pred").glob("*.png"))) == 2
    code, _, err = run(capsys, "evaluate", "--checkpoint", checkpoint, "--model", "unet")
    assert code == 2 and "jcs-seg-base" in err


def test_console_script_subprocess(tmp_path):
    script = Path(sys.executable).with_name("jcs")
    command = [str(script)] if script.is_file() else [shutil.which("jcs") or "jcs"]
    env = {**os.environ, "JCS_DEBUG": ""}
    ok = subprocess.run(command + ["data", "list", "--root", tmp_path], capture_output=True, text=True,
                        env=env, timeout=120)
    assert ok.returncode == 0 and "absent" in ok.stdout
    bad = subprocess.run(command + ["train", "--model", "nope", "--profile", "smoke"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2
    assert "unknown model 'nope'" in bad.stderr and "Traceback" not in bad.stderr


def test_python_dash_m(tmp_path):
    done = subprocess.run([sys.executable, "-m", "jcs.cli", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "jcs" in done.stdout
