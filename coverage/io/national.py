"""Cached readers of the embedded national commune tables (COG 2026).

Both tables are built by ``scripts/build_communes_table.py`` from the npm package
``@etalab/decoupage-administratif@6.0.0`` (data Licence Ouverte, « Source : Etalab –
découpage administratif »); see ``data/communes/README.md``.
"""

from __future__ import annotations

import functools
import logging

import pandas as pd

from coverage.settings import COMMUNES_DATA_DIR

log = logging.getLogger(__name__)

NATIONAL_COMMUNES_FILE = COMMUNES_DATA_DIR / "communes_cog2026.csv.gz"
PASSAGE_CODES_FILE = COMMUNES_DATA_DIR / "passage_codes_cog2026.csv.gz"
#: Attribution to show with any figure built from these tables.
ATTRIBUTION = "Source : Etalab – découpage administratif (COG 2026, Licence Ouverte)"

_TEXT = ["code_insee", "nom", "code_dep", "nom_dep", "code_reg", "nom_reg", "zone",
         "code_epci", "nom_epci"]


@functools.cache
def _national() -> pd.DataFrame:
    df = pd.read_csv(NATIONAL_COMMUNES_FILE, dtype={c: "str" for c in _TEXT},
                     keep_default_na=False, na_values=[""])
    df["population"] = df["population"].astype("Int64")
    return df


@functools.cache
def _passage() -> pd.DataFrame:
    df = pd.read_csv(PASSAGE_CODES_FILE, dtype={"code_ancien": "str", "code_actuel": "str",
                                                "source": "str"},
                     keep_default_na=False, na_values=[""])
    return df.astype({"ambigu": bool, "code_actuel_aussi": bool})


def national_communes() -> pd.DataFrame:
    """The current communes of France (COG 2026), without geometry.

    Returns
    -------
    pandas.DataFrame
        One row per current commune (34,969, COM included): ``code_insee``, ``nom``,
        ``code_dep``, ``nom_dep``, ``code_reg``, ``nom_reg``, ``zone`` (metro, drom, com),
        ``code_epci`` (SIREN; NA when none), ``nom_epci``, ``population`` (Int64,
        inhabitants). A fresh copy: callers may modify it.
    """
    return _national().copy()


def passage_codes() -> pd.DataFrame:
    """Older or subordinate commune codes → current COG 2026 code.

    Returns
    -------
    pandas.DataFrame
        ``code_ancien``, ``code_actuel``, ``source`` (ancien-code, commune-deleguee,
        commune-associee, arrondissement-municipal), ``ambigu`` (the old code leads to more
        than one current commune), ``code_actuel_aussi`` (the old code is also current).
    """
    return _passage().copy()


def current_codes() -> frozenset[str]:
    """The set of current COG 2026 commune codes."""
    return _current_codes()


@functools.cache
def _current_codes() -> frozenset[str]:
    return frozenset(_national()["code_insee"])


@functools.cache
def current_index() -> pd.Index:
    """Current COG 2026 commune codes as a (unique) pandas Index, for fast look-ups."""
    return pd.Index(_national()["code_insee"].to_numpy(dtype=object))


def is_current_code(codes: pd.Series) -> pd.Series:
    """True where a (normalised) code is a current COG 2026 commune code. Vectorised."""
    found = current_index().get_indexer(pd.Index(codes.fillna("").to_numpy(dtype=object))) >= 0
    return pd.Series(found, index=codes.index)
