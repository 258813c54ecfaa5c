"""Neutralise user text before it reaches a web page or a spreadsheet.

Names of communes, services, EPCIs, organisms and file paths come from files the user
gives; they are data, never code. Two contexts need care:

* **HTML and JavaScript** (the folium maps): folium writes tooltip and popup text inside
  JavaScript template literals (between backticks) that Leaflet then inserts as HTML.
  :func:`html.escape` neutralises ``< > & " '`` but not a backtick (which ends the literal),
  ``${…}`` (which runs code inside it) nor a backslash. :func:`html_js_safe` replaces all
  of them by HTML character references: inside a template literal they are plain
  characters, and the browser shows them as the original text when it parses the HTML.
* **Spreadsheets** (CSV and XLSX exports): a cell whose text starts with ``=``, ``+``,
  ``-``, ``@``, a tab or a carriage return is read as a formula by Excel and LibreOffice
  (CSV injection, e.g. ``=cmd|' /C calc'!A0``). :func:`spreadsheet_safe` puts a single
  quote in front of such text, as the OWASP guidance on CSV injection advises; numbers are
  never altered. XLSX cells are also written with the string type (see
  :mod:`coverage.export.xlsx`).
"""

from __future__ import annotations

import html
from typing import Any, TypeVar

import pandas as pd

__all__ = [
    "FORMULA_PREFIXES",
    "html_js_safe",
    "spreadsheet_safe",
    "spreadsheet_safe_frame",
]

#: First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection),
#: and their full-width forms.
FORMULA_PREFIXES: tuple[str, ...] = (
    "=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20",
)

#: Characters html.escape leaves that a JavaScript template literal reads as code.
_JS_LITERAL = str.maketrans({
    "`": "&#96;",
    "$": "&#36;",
    "{": "&#123;",
    "}": "&#125;",
    "\\": "&#92;",
})

_T = TypeVar("_T")


def html_js_safe(text: object) -> str:
    """Return ``text`` as inert HTML that may also sit inside a JavaScript template literal.

    ``& < > " '`` (HTML) and the backtick, dollar, braces and backslash (template
    literal) become HTML character references, so the text shows as itself and never runs.

    Parameters
    ----------
    text
        Any value; it is converted with :class:`str` first.

    Returns
    -------
    str
        The escaped text.
    """
    return html.escape(str(text), quote=True).translate(_JS_LITERAL)


def spreadsheet_safe(value: _T) -> _T | str:
    """Return a cell value that no spreadsheet reads as a formula.

    Parameters
    ----------
    value
        A cell value. Only text is changed: text starting with one of
        :data:`FORMULA_PREFIXES` gets a leading single quote (``'=1+1``). Numbers, booleans,
        dates and missing values are returned unchanged.

    Returns
    -------
    object
        The value, or the quoted text.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _is_text_column(series: pd.Series[Any]) -> bool:
    """Return whether a column may hold text (object, string or categorical dtype)."""
    dtype = series.dtype
    return bool(pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)
                or isinstance(dtype, pd.CategoricalDtype))


def spreadsheet_safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``df`` whose text cells are :func:`spreadsheet_safe`.

    Numeric, boolean and date columns are left as they are; in a text column (object,
    string or categorical dtype) only the values that are strings change. Column names are
    neutralised too.

    Parameters
    ----------
    df
        Any table.

    Returns
    -------
    pandas.DataFrame
        A copy (``df`` is not modified), same index and dtypes.
    """
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if not _is_text_column(s):
            continue
        categories = [spreadsheet_safe(c) for c in s.cat.categories] \
            if isinstance(s.dtype, pd.CategoricalDtype) else None
        if categories is not None and len(set(categories)) == len(categories):
            out[col] = s.cat.rename_categories(categories)
        else:
            kept = s.dtype if categories is None else object
            out[col] = s.astype(kept).map(spreadsheet_safe, na_action="ignore").astype(kept)
    return out.rename(columns=lambda c: spreadsheet_safe(c) if isinstance(c, str) else c)
