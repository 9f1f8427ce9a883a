"""scripts/gpu_reproduce.py's pure parts: the classification datasets a compact data bundle lacks
are left out through profile overrides (recorded in every results config), and the number of
training processes divides every global batch."""
import importlib.util
from pathlib import Path

import pytest

from jcs.engine import get_profile

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("gpu_reproduce", ROOT / "scripts" / "gpu_reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bundle_without_classifier_extras_trains_on_ucsd_alone(script, tmp_path):
    (tmp_path / "ucsd_covid_ct").mkdir()  # the bundle: UCSD yes, SARS-CoV-2 and COVID-CT-MD no
    profile = get_profile("gpu")
    assert profile.cls_datasets == ("ucsd-covid-ct", "sarscov2-ct")
    overrides = script.missing_data_overrides(profile, tmp_path, {})
    assert overrides == {"cls_datasets": "ucsd-covid-ct", "cls_cross_tests": ""}
    applied = get_profile("gpu", overrides)
    assert applied.cls_datasets == ("ucsd-covid-ct",) and applied.cls_cross_tests == ()


def test_full_copy_and_user_settings_are_left_alone(script, tmp_path):
    for folder in ("ucsd_covid_ct", "sarscov2_ct_sample", "covid_ct_md_sample"):
        (tmp_path / folder).mkdir()
    assert script.missing_data_overrides(get_profile("gpu"), tmp_path, {}) == {}
    only_ucsd = tmp_path / "bundle"
    (only_ucsd / "ucsd_covid_ct").mkdir(parents=True)
    given = {"cls_cross_tests": "covid-ct-md"}  # --set wins over what the folder holds
    assert script.missing_data_overrides(get_profile("gpu", given), only_ucsd, given) == {
        "cls_datasets": "ucsd-covid-ct"}
    with pytest.raises(SystemExit, match="make_gpu_bundle"):
        script.missing_data_overrides(get_profile("gpu"), tmp_path / "empty", {})


def test_training_processes_divide_every_global_batch(script):
    profile = get_profile("gpu")
    assert script.training_processes(profile, 1) == 1
    assert script.training_processes(profile, 8) == 8  # batches 8 and 64
    assert script.training_processes(profile, 3) == 2
