"""The GitHub Actions workflows: one builds the book from the committed results and deploys it to
GitHub Pages, one runs ``make test``; both pass ``actionlint`` (pinned in requirements.txt), which
is shown to reject a broken workflow."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def _actionlint() -> str:
    path = Path(sys.executable).parent / "actionlint"
    found = str(path) if path.exists() else shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is missing: it comes with requirements.txt (make env)")
    return found


def _lint(*files: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([_actionlint(), "-oneline", *map(str, files)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _steps(workflow: dict) -> list:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_workflows_pass_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"book.yml", "test.yml"}
    run = _lint(*files)
    assert run.returncode == 0, run.stdout + run.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    (tmp_path / ".git").mkdir()  # actionlint looks for the repository root
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - uses: actions/checkout@v5\n        with:\n"
                      "          no-such-input: 1\n      - run: echo ${{ matrix.nothing }}\n")
    run = _lint(broken, cwd=tmp_path)
    assert run.returncode == 1
    assert "no-such-input" in run.stdout and "\"nothing\" is not defined" in run.stdout


def test_the_book_workflow_builds_from_the_committed_results_and_deploys_to_pages():
    workflow = yaml.safe_load((WORKFLOWS / "book.yml").read_text())
    steps = _steps(workflow)
    runs = " ".join(step.get("run", "") for step in steps)
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    assert "make book" in runs and "retrain" not in runs and "reproduce" not in runs
    assert "actions/upload-pages-artifact" in uses and "actions/deploy-pages" in uses
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages"))
    assert upload["with"]["path"] == "_build/html"
    assert workflow["permissions"]["pages"] == "write"


def test_the_test_workflow_runs_make_test():
    workflow = yaml.safe_load((WORKFLOWS / "test.yml").read_text())
    assert any("make test" in step.get("run", "") for step in _steps(workflow))
