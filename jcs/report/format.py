"""Display of the report tables: numeric DataFrames with ``(metric, column)`` columns, where a
column ``"<x> std"`` holds the standard deviation over seeds of column ``"<x>"``, become
"mean ± std" percentages with a caption naming the profile, hardware, metric definitions and
notes (all kept in ``DataFrame.attrs``).

Wide tables (several profiles side by side) name in ``attrs["main"]`` the metrics (first column
level) of the table shown first; ``attrs["details"]`` lists further views of the same DataFrame,
each ``{"title", "columns": [(metric, column), ...], "rename": {column: shown name}}``, which
:func:`show` renders in collapsed sections under the table. ``attrs["wrap_index"]`` lets long row
labels wrap (the book is narrow)."""
from __future__ import annotations

import contextlib
import html
import math
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

__all__ = ["format_table", "show", "caption_html", "table_view", "main_view", "detail_views",
           "column_groups",
           "TableAttrs", "note_missing"]

TableAttrs = Dict[str, Any]


def _number(value: Any, mode: str, digits: int) -> str:
    """``mode``: "percent" (fraction × 100), "decimal" or "plain" (integers without decimals)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, str) or not _is_number(value):
        return str(value)
    if mode == "percent":
        return f"{100 * float(value):.{digits}f}"
    if mode == "plain" and float(value).is_integer():
        return f"{int(value)}"
    if mode == "plain":
        return f"{float(value):g}"
    return f"{float(value):.{digits}f}"


def format_table(df: pd.DataFrame, percent: Optional[bool] = None,
                 digits: Optional[int] = None) -> pd.DataFrame:
    """Strings for display: every column ``c`` with a sibling ``c std`` becomes ``"mean ± std"``
    (the std column is dropped). ``percent`` (default ``df.attrs["percent"]``, True) prints
    fractions as percentages with ``digits`` decimals (default ``df.attrs["digits"]``, else 1;
    3 when not percent), except the metrics listed in ``df.attrs["plain"]`` (counts,
    thresholds)."""
    percent = df.attrs.get("percent", True) if percent is None else percent
    if digits is None:
        digits = df.attrs.get("digits", 1 if percent else 3)
    columns = list(df.columns)
    std_of = {}
    for col in columns:
        key = col[-1] if isinstance(col, tuple) else col
        if isinstance(key, str) and key.endswith(" std"):
            base = (*col[:-1], key[:-4]) if isinstance(col, tuple) else key[:-4]
            if base in columns:
                std_of[base] = col
    keep = [c for c in columns if c not in std_of.values()]
    out = pd.DataFrame(index=df.index, columns=pd.MultiIndex.from_tuples(keep)
                       if isinstance(df.columns, pd.MultiIndex) else keep, dtype=object)
    plain = set(df.attrs.get("plain", ()))
    na_text = dict(df.attrs.get("na", {}))  # per first-level column: text for a missing value
    for col in keep:
        top = col[0] if isinstance(col, tuple) else col
        mode = "plain" if top in plain else ("percent" if percent else "decimal")
        values = []
        stds = df[std_of[col]].tolist() if col in std_of else [None] * len(df)
        for value, std in zip(df[col].tolist(), stds):  # by position: index labels may repeat
            text = _number(value, mode, digits)
            if text == "—" and top in na_text:
                text = na_text[top]
            if _is_number(std) and not math.isnan(float(std)) and text != "—":
                text += f" ± {_number(std, mode, digits)}"
            values.append(text)
        out[col] = values
    return out


def table_view(df: pd.DataFrame, digits: int = 3, index: bool = False):
    """A plain table for display (a pandas Styler): no row numbers (``index=True``: the index,
    e.g. of a transposed table), floats with ``digits`` decimals, thousands separated, missing
    values as "—"."""
    styler = df.style if index else df.style.hide(axis="index")
    return styler.format(precision=digits, thousands=",", na_rep="—")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def caption_html(attrs: TableAttrs) -> str:
    """The caption of a table: title, what produced "ours", metric definitions, notes, source."""
    parts: List[str] = []
    if attrs.get("title"):
        parts.append(f"<p><strong>{html.escape(attrs['title'])}</strong></p>")
    if attrs.get("ours"):
        parts.append(f"<p><em>Ours:</em> {html.escape(attrs['ours'])}.</p>")
    if attrs.get("percent", True):
        parts.append("<p>Values in %; ours as mean ± std over seeds where several seeds "
                     "exist.</p>")
    elif attrs.get("seeds_note", True):
        parts.append("<p>Ours as mean ± std over seeds where several seeds exist.</p>")
    definitions = attrs.get("definitions") or {}
    if definitions:
        items = "".join(f"<li><strong>{html.escape(k)}</strong>: {html.escape(v)}</li>"
                        for k, v in definitions.items())
        parts.append(f"<p>Definitions:</p><ul>{items}</ul>")
    notes = attrs.get("notes") or []
    if notes:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
        parts.append(f"<p>Notes:</p><ul>{items}</ul>")
    if attrs.get("source"):
        link = (f' (<a href="../api.html#{html.escape(attrs["api"])}">where this comes from</a>)'
                if attrs.get("api") else "")
        parts.append(f"<p><em>Computed by</em> <code>{html.escape(attrs['source'])}</code>"
                     f"{link}.</p>")
    return "".join(parts)


class _Shown:
    """An object with an HTML representation (what ``show`` returns for notebooks)."""

    def __init__(self, html_text: str, text: str):
        self._html, self._text = html_text, text

    def _repr_html_(self) -> str:
        return self._html

    def __repr__(self) -> str:
        return self._text


def main_view(df: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``df`` shown first: the metrics of ``attrs["main"]`` (all when unset)."""
    main = df.attrs.get("main")
    if not main or not isinstance(df.columns, pd.MultiIndex):
        return df
    return df[[c for c in df.columns if c[0] in main]]


def detail_views(df: pd.DataFrame) -> List[tuple]:
    """``[(title, DataFrame)]`` of the views listed in ``attrs["details"]``, columns renamed."""
    views = []
    for view in df.attrs.get("details") or []:
        columns = [tuple(c) for c in view["columns"] if tuple(c) in df.columns]
        if not columns:
            continue
        sub = df[columns].copy()
        rename = view.get("rename") or {}
        sub.columns = pd.MultiIndex.from_tuples([(a, rename.get(b, b)) for a, b in columns],
                                                names=df.columns.names)
        views.append((view["title"], sub))
    return views


def _html(table: pd.DataFrame) -> str:
    """HTML of a formatted table; "mean ± std" is joined by no-break spaces so that it stays on
    one line where the book lets the cells of a narrow column wrap."""
    table = table.map(lambda text: text.replace(" ± ", "\u00a0±\u00a0")
                      if isinstance(text, str) else text)
    return table.to_html(classes="jcs-table", border=0, na_rep="—", escape=True)


def _metric(column: Any) -> Any:
    return column[0] if isinstance(column, tuple) else column


def column_groups(table: pd.DataFrame, groups: Optional[List[Dict[str, Any]]]) -> List[tuple]:
    """``[(title, DataFrame)]``: ``table`` cut into narrower tables, one per group
    ``{"title", "metrics": [first-level column, ...]}`` (the same rows each), so that a table
    with many metrics fits the page. The columns of no group go to the group whose ``metrics``
    is empty, else to a last, untitled table; empty tables are left out. Without groups:
    ``[("", table)]``."""
    if not groups:
        return [("", table)]
    named = {m for group in groups for m in group["metrics"]}
    rest = [c for c in table.columns if _metric(c) not in named]
    parts = []
    for group in groups:
        columns = ([c for c in table.columns if _metric(c) in group["metrics"]]
                   if group["metrics"] else rest)
        if group["metrics"] or rest:
            rest = rest if group["metrics"] else []
        if columns:
            parts.append((group.get("title", ""), table[columns]))
    if rest:
        parts.append(("", table[rest]))
    return parts


def _grouped_html(table: pd.DataFrame, groups) -> str:
    return "".join((f'<p class="jcs-group"><em>{html.escape(title)}</em></p>' if title else "")
                   + _html(part) for title, part in column_groups(table, groups))


def _grouped_text(table: pd.DataFrame, groups) -> str:
    return "\n".join((f"{title}\n" if title else "") + part.to_string()
                     for title, part in column_groups(table, groups))


def show(df: pd.DataFrame, percent: Optional[bool] = None, digits: Optional[int] = None) -> _Shown:
    """The formatted table with its caption, for display in a notebook (HTML) or a console;
    the views of ``attrs["details"]`` follow the table in collapsed sections. A table (or view)
    with ``groups`` (``attrs["groups"]``, a view's ``"groups"``) is shown as one narrower table
    per group of metrics (:func:`column_groups`), so that it fits the book's column."""
    table = format_table(main_view(df), percent, digits)
    body = _grouped_html(table, df.attrs.get("groups"))
    caption = caption_html(df.attrs)
    details, texts = [], []
    views = {view["title"]: view for view in df.attrs.get("details") or []}
    for title, view in detail_views(df):
        shown = format_table(view, percent, digits)
        groups = views.get(title, {}).get("groups")
        details.append(f'<details class="jcs-details"><summary>{html.escape(title)}</summary>'
                       + _grouped_html(shown, groups) + "</details>")
        texts.append(f"{title}\n{_grouped_text(shown, groups)}")
    classes = "jcs-report-table" + (" jcs-wrap" if df.attrs.get("wrap_index") else "")
    text = _grouped_text(table, df.attrs.get("groups"))
    return _Shown(f'<div class="{classes}">{body}{"".join(details)}{caption}</div>',
                  "\n\n".join([f"{df.attrs.get('title', '')}\n{text}"] + texts))


@contextlib.contextmanager
def note_missing(what: str):
    """``with note_missing("Table IV"): ...``: a table or figure whose inputs (results files,
    checkpoints, benchmark files, a dataset) are missing is replaced by one printed line saying
    what is not shown and why (the :class:`FileNotFoundError`), so that a chapter still runs on
    partial results."""
    try:
        yield
    except FileNotFoundError as missing:
        print(f"{what} not shown: {missing}")
