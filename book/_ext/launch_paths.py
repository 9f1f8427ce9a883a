"""Sphinx extension: the launch buttons (Binder, JupyterHub, Colab) of a chapter open its source
notebook in the repository, ``notebooks/<name>.ipynb``.

The chapters are built from the executed copies in ``book/generated/`` (not committed), so the
theme's links, made from the page's path, would point at files the repository does not have.
``launch_path_map`` (``_config.yml``: ``sphinx.config``) maps a path prefix of the built pages to
the folder of their sources; this runs after sphinx-book-theme has made the buttons."""
from __future__ import annotations

from typing import Any, Dict


def _rewrite(buttons, mapping: Dict[str, str]) -> None:
    for button in buttons:
        if button.get("type") == "group":
            _rewrite(button.get("buttons", []), mapping)
        elif button.get("url"):
            for built, source in mapping.items():
                button["url"] = button["url"].replace(built, source)


def point_launch_buttons_at_sources(app, pagename: str, templatename: str,
                                    context: Dict[str, Any], doctree) -> None:
    groups = [b for b in context.get("header_buttons", []) if b.get("label") == "launch-buttons"]
    for group in groups:
        _rewrite(group.get("buttons", []), app.config.launch_path_map)


def setup(app):
    app.add_config_value("launch_path_map", {}, "html")
    # sphinx-book-theme adds the launch buttons at priority 501
    app.connect("html-page-context", point_launch_buttons_at_sources, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
