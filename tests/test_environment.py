"""The conda environment and the pip requirements describe the same pinned set."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _requirements():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_environment_yml_parses_and_points_at_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "jcs"
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert "-r requirements.txt" in pip_section
    assert "-e ." in pip_section


def test_requirements_are_pinned_and_torch_is_the_local_build():
    reqs = _requirements()
    assert all("==" in r for r in reqs), [r for r in reqs if "==" not in r]
    names = {r.split("==")[0].lower(): r.split("==")[1] for r in reqs}
    assert names["torch"] == "2.14.1" and names["torchvision"] == "0.29.1"
    assert names["jupyter-book"].startswith("1.")
    for needed in ("papermill", "nbval", "pytest", "nibabel", "pydicom", "pylibjpeg",
                   "pylibjpeg-libjpeg", "sphinx-mathjax-offline", "pysodmetrics"):
        assert needed in names, needed


def test_installed_versions_match_the_pins():
    from importlib.metadata import version

    for req in _requirements():
        name, pinned = req.split("==")
        assert version(name) == pinned, f"{name}: installed {version(name)}, pinned {pinned}"


def test_binder_installs_the_pinned_requirements_and_jcs():
    env = yaml.safe_load((ROOT / "binder" / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "-r requirements.txt" in post and "-e ." in post
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"


def test_launch_buttons_open_the_source_notebooks():
    import importlib.util

    spec = importlib.util.spec_from_file_location("launch_paths",
                                                  ROOT / "book" / "_ext" / "launch_paths.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    buttons = [{"type": "link", "url": "https://colab/github/o/r/blob/main/book/generated/x.ipynb"},
               {"type": "group", "buttons": [{"url": "b?urlpath=lab/tree/book/generated/x.ipynb"}]}]
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    module._rewrite(buttons, config["sphinx"]["config"]["launch_path_map"])
    assert buttons[0]["url"].endswith("/blob/main/notebooks/x.ipynb")
    assert buttons[1]["buttons"][0]["url"].endswith("lab/tree/notebooks/x.ipynb")
