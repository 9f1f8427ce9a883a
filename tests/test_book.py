"""The Jupyter Book: built (warnings are errors) from the notebooks executed on smoke results,
then every page opened in headless Chromium: tables and figures render, no raw LaTeX, no
unresolved glue role, no error output, no bookkeeping code (``glue(``, papermill's injected
parameters), no table wider than the text column at a 1280-pixel window, and launch buttons
(Binder, JupyterHub, Colab) that open the chapter's source notebook in the repository of
``_config.yml``. Needs the ``chromium`` browser (``apt-get install -y chromium`` on
Debian/Ubuntu; ``google-chrome`` also works)."""
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-quic", "--virtual-time-budget=8000"]
# Page -> (minimum tables, minimum images) it must show.
PAGES = {
    "book/intro": (1, 0), "book/reproduce": (1, 0), "book/data": (2, 0), "book/api": (1, 0),
    "book/references": (0, 0), "book/generated/dataset": (5, 3),
    "book/generated/classification": (2, 2), "book/generated/ablation": (4, 1),
    "book/generated/comparison": (4, 2), "book/generated/dice_distribution": (4, 1),
    "book/generated/runtime": (2, 0), "book/generated/summary": (7, 0),
}


def _chromium() -> str:
    path = (shutil.which("chromium") or shutil.which("chromium-browser")
            or shutil.which("google-chrome"))
    if path is None:
        pytest.fail("the book test needs the Chromium browser: install it with "
                    "`apt-get install -y chromium` (Debian/Ubuntu)")
    return path


# Run in each page before its DOM is dumped: open every collapsed section, then record the
# width of the text column and of every table (the test compares them).
MEASURE = """<script>
window.addEventListener("load", function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  var column = document.querySelector("article.bd-article") || document.querySelector("main");
  var style = getComputedStyle(column);
  var inner = column.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  document.body.setAttribute("data-column-width", Math.round(inner));
  document.querySelectorAll("main table").forEach(function (t) {
    t.setAttribute("data-width", Math.round(t.getBoundingClientRect().width));
  });
});
</script>"""
WINDOW = "--window-size=1280,2400"


def _measured_dom(chromium: str, html_file: Path) -> str:
    """The DOM of ``html_file`` at a 1280-pixel window, with the widths of MEASURE: a copy of
    the page next to it (so that its assets resolve) with the script added."""
    probe = html_file.with_name(f"_measure_{html_file.name}")
    probe.write_text(html_file.read_text().replace("</body>", MEASURE + "</body>"))
    try:
        return subprocess.run([chromium, *CHROMIUM_FLAGS, WINDOW, "--dump-dom", probe.as_uri()],
                              capture_output=True, text=True, timeout=120).stdout
    finally:
        probe.unlink()


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def _stage(source: Path, executed: Path) -> None:
    """A copy of the book sources with the executed notebooks in book/generated/."""
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "book", source / "book", ignore=shutil.ignore_patterns("generated"))
    shutil.copytree(executed, source / "book" / "generated", ignore=shutil.ignore_patterns("*.py"))
    (source / "jcs").symlink_to(ROOT / "jcs")  # the API page includes code from jcs/


def _visible_text(soup: BeautifulSoup) -> str:
    for tag in soup(["script", "style", "pre", "code", "mjx-container", "mjx-assistive-mml",
                     "math", "svg", "noscript"]):
        tag.decompose()
    main = soup.find("main") or soup
    return main.get_text(" ")


@pytest.fixture(scope="module")
def built_book(executed_notebooks, tmp_path_factory) -> Path:
    spec = importlib.util.spec_from_file_location("build_book", ROOT / "scripts" / "build_book.py")
    build_book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_book)
    source = tmp_path_factory.mktemp("book-src")
    _stage(source, executed_notebooks)
    return build_book.build_html(tmp_path_factory.mktemp("book-out"), source=source)


def test_every_page_is_checked():
    assert set(_toc_files()) == set(PAGES)


@pytest.mark.slow
@pytest.mark.xdist_group("smoke")
def test_book_pages_render(built_book, tmp_path):
    chromium = _chromium()
    problems = []
    for page, (min_tables, min_images) in PAGES.items():
        html_file = built_book / f"{page}.html"
        assert html_file.is_file(), f"{page}.html was not built"
        dom = _measured_dom(chromium, html_file)
        soup = BeautifulSoup(dom, "html.parser")
        main = soup.find("main") or soup
        column = int(soup.body.get("data-column-width", 0))
        if not column:
            problems.append(f"{page}: the text column could not be measured")
        for table in main.find_all("table"):
            width = int(table.get("data-width", 0))
            if width > column + 1:
                head = table.find("tr").get_text(" | ", strip=True)[:80] if table.find("tr") else ""
                problems.append(f"{page}: a table {width} px wide in a {column} px column: {head}")
        code = " ".join(block.get_text() for block in main.select(".cell_input, pre"))
        for bookkeeping in ("glue(", "# Parameters", "find_spec(\"jcs\")", "nbval"):
            if bookkeeping in code:
                problems.append(f"{page}: bookkeeping code on the page: {bookkeeping!r}")
        tables = main.find_all("table")
        images = main.find_all("img")
        if len(tables) < min_tables:
            problems.append(f"{page}: {len(tables)} tables, expected at least {min_tables}")
        if len(images) < min_images:
            problems.append(f"{page}: {len(images)} images, expected at least {min_images}")
        for img in images:
            src = img.get("src", "")
            if not src.startswith("data:") and not (html_file.parent / src).is_file():
                problems.append(f"{page}: image {src} missing")
        if main.select(".output.error, .output.traceback, .output.stderr"):
            problems.append(f"{page}: error or stderr output cell")
        text = _visible_text(BeautifulSoup(str(main), "html.parser"))
        for pattern, what in ((r"Traceback \(most recent call last\)", "traceback"),
                              (r"\{glue(:\w+)?\}", "unresolved glue role"),
                              (r"\$[^$\s][^$]*\$", "raw LaTeX"), (r"\\\(|\\\[", "raw LaTeX"),
                              (r"\bnan\b|\bNaN\b", "NaN in text")):
            found = re.search(pattern, text)
            if found:
                context = text[max(0, found.start() - 60):found.end() + 20]
                problems.append(f"{page}: {what}: {context!r}")
    api = BeautifulSoup((built_book / "book" / "api.html").read_text(), "html.parser")
    anchors = {tag["id"] for tag in api.find_all(id=True)}
    for page in PAGES:
        html = (built_book / f"{page}.html").read_text()
        for anchor in re.findall(r'href="\.\./api\.html#([\w-]+)"', html):
            if anchor not in anchors:
                problems.append(f"{page}: link to api.html#{anchor}, which does not exist")
    assert not problems, "\n".join(problems)
    shot = tmp_path / "summary.png"
    subprocess.run([chromium, *CHROMIUM_FLAGS, "--window-size=1280,2400", f"--screenshot={shot}",
                    (built_book / "book/generated/summary.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.xdist_group("smoke")
def test_every_chapter_has_launch_buttons_to_its_source_notebook(built_book):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]["url"].rstrip("/")
    org_repo = "/".join(repo.split("/")[-2:])
    branch = config["repository"]["branch"]
    problems = []
    for page in (p for p in PAGES if p.startswith("book/generated/")):
        name = page.split("/")[-1]
        source = f"notebooks/{name}.ipynb"
        assert (ROOT / source).is_file()
        soup = BeautifulSoup((built_book / f"{page}.html").read_text(), "html.parser")
        links = [a.get("href", "") for a in soup.find_all("a")]
        expected = {
            "Binder": f"{config['launch_buttons']['binderhub_url']}/v2/gh/{org_repo}/{branch}"
                      f"?urlpath=lab/tree/{source}",
            "Colab": f"{config['launch_buttons']['colab_url']}/github/{org_repo}/blob/{branch}/"
                     f"{source}",
            "JupyterHub": f"{config['launch_buttons']['jupyterhub_url']}/hub/user-redirect/"
                          "git-pull?",
        }
        for button, url in expected.items():
            if not any(link.startswith(url) for link in links):
                problems.append(f"{page}: no {button} button to {url}")
        hub = [link for link in links if "git-pull?" in link]
        if hub and f"{source}" not in hub[0].replace("%2F", "/"):
            problems.append(f"{page}: the JupyterHub button does not open {source}")
        if not any(link.endswith(f"{name}.ipynb") and "_sources" in link for link in links):
            problems.append(f"{page}: no download of the .ipynb")
        if not any(link.startswith(repo) for link in links):
            problems.append(f"{page}: no link to the repository {repo}")
    assert not problems, "\n".join(problems)
