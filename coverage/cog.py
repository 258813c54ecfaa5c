"""Every code rule: commune and département codes, national tables, cours d'appel.

Harmonisation: spreadsheet-mangled and older COG codes → current codes.

Codes are first normalised (blanks removed, upper case, a spreadsheet's ``1001`` or
``1001.0`` back to ``01001``), then compared with the embedded COG 2026 table
(below). A current code always wins; an older or subordinate code
(commune déléguée / associée, municipal arrondissement) is mapped through the passage table
with a warning listing the rows; anything else is an :class:`~coverage.errors.UnknownCodeError`
listing the rows. Codes starting with ``Z`` belong to the fictional demo territory
(:func:`coverage.settings.is_fictional_code`) and are accepted only in a wholly fictional
data set.

Also here, the other code references: the embedded national commune tables (COG 2026)
and the département → cour d'appel table.

National tables. Cached readers of the embedded national commune tables (COG 2026).

Both tables are built by ``scripts/build_communes_table.py`` from the npm package
``@etalab/decoupage-administratif@6.0.0`` (data Licence Ouverte, « Source : Etalab –
découpage administratif »); see ``data/communes/README.md``.

Courts. Département → ressort de cour d'appel, from the embedded table
``data/communes/cours_appel.csv``.

The table is transcribed from the Code de l'organisation judiciaire (article D311-1 and its
annex, tableau IV « Siège et ressort des cours d'appel »); its header comment cites the
source. It covers the 101 départements (Corsica 2A/2B → Bastia; Mayotte → Saint-Denis, chambre
d'appel de Mamoudzou). The fictional demo départements ("Z…") belong to no real court: they
get the label :data:`FICTIONAL_COURT`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from coverage._validate import ProblemList, empty_remapped
from coverage.errors import UnknownCodeError
from coverage.labels import FICTIONAL_COURT
from coverage.settings import COMMUNES_DATA_DIR, FICTIONAL_DEP_PREFIX, is_fictional_code

__all__ = [
    "ATTRIBUTION",
    "COURTS_FILE",
    "MAX_LISTED_REMAPS",
    "NATIONAL_COMMUNES_FILE",
    "PASSAGE_CODES_FILE",
    "UNKNOWN_COURT",
    "Harmonised",
    "court_of",
    "courts_for",
    "courts_table",
    "current_codes",
    "current_index",
    "dep_of_code",
    "harmonise_codes",
    "is_current_code",
    "national_communes",
    "normalise_codes",
    "normalise_dep_codes",
    "normalise_dept",
    "passage_codes",
    "valid_commune_codes",
]


log = logging.getLogger(__name__)

# --- National commune tables ----------------------------------------------------------
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
    """Return the current communes of France (COG 2026), without geometry.

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
    """Return the set of current COG 2026 commune codes."""
    return _current_codes()


@functools.cache
def _current_codes() -> frozenset[str]:
    return frozenset(_national()["code_insee"])


@functools.cache
def current_index() -> pd.Index:
    """Return the current COG 2026 commune codes as a (unique) pandas Index, for fast look-ups."""
    index: pd.Index = pd.Index(_national()["code_insee"].to_numpy(dtype=object))
    return index


def is_current_code(codes: pd.Series) -> pd.Series:
    """Return True where a (normalised) code is a current COG 2026 commune code (vectorised)."""
    found = current_index().get_indexer(pd.Index(codes.fillna("").to_numpy(dtype=object))) >= 0
    return pd.Series(found, index=codes.index)


# --- Cours d'appel -----------------------------------------------------------------------
COURTS_FILE = COMMUNES_DATA_DIR / "cours_appel.csv"
#: Label for a département code absent from the table (not expected for current COG codes).
UNKNOWN_COURT = "inconnue"


@lru_cache(maxsize=1)
def courts_table() -> pd.DataFrame:
    """Return the département → cour d'appel table.

    Returns
    -------
    pandas.DataFrame
        Columns ``code_dep`` (str), ``cour_appel`` (str, the seat of the court), ``note``
        (str, may be empty); 101 rows.
    """
    df = pd.read_csv(COURTS_FILE, comment="#", dtype=str, keep_default_na=False)
    return df


def court_of(code_dep: str) -> str:
    """Cour d'appel of a département.

    Parameters
    ----------
    code_dep
        Département code ("01" … "95", "2A", "2B", "971" … "976", or a fictional "Z…").

    Returns
    -------
    str
        Seat of the cour d'appel ("Riom", "Bastia", …), :data:`FICTIONAL_COURT` for a
        fictional code, :data:`UNKNOWN_COURT` when absent from the table.
    """
    return _mapping().get(code_dep, FICTIONAL_COURT if is_fictional_code(code_dep)
                          else UNKNOWN_COURT)


def courts_for(codes_dep: Iterable[str]) -> list[str]:
    """:func:`court_of` for each code, in order."""
    return [court_of(str(c)) for c in codes_dep]


@lru_cache(maxsize=1)
def _mapping() -> dict[str, str]:
    t = courts_table()
    return dict(zip(t["code_dep"], t["cour_appel"], strict=True))


# --- Code harmonisation ------------------------------------------------------------------

#: Remapped rows listed in a warning before "… and N more".
MAX_LISTED_REMAPS = 30

_CODE_RE = r"^(?:\d{5}|2[AB]\d{3})$"
_FICTIONAL_RE = rf"^{FICTIONAL_DEP_PREFIX}[A-Z0-9]{{4}}$"


@dataclass
class Harmonised:
    """Result of :func:`harmonise_codes`.

    Attributes
    ----------
    codes
        Current codes, same index as the input.
    remapped
        One row per mapped code: ``row`` (1-based), ``column``, ``code_ancien``,
        ``code_actuel``.
    warnings
        Human-readable lines (empty when nothing was mapped).
    """

    codes: pd.Series
    remapped: pd.DataFrame = field(default_factory=empty_remapped)
    warnings: list[str] = field(default_factory=list)


def normalise_codes(codes: pd.Series) -> pd.Series:
    """Commune codes as 5-character upper-case strings.

    Strips blanks and a trailing ``.0`` (a number that went through a spreadsheet), upper
    cases ``2a``/``2b``, and left-pads 4-digit codes with a zero (``1001`` → ``01001``).
    Missing values stay missing; other malformed codes are returned unchanged for the
    caller to report.
    """
    s = codes.astype("str").str.strip().str.upper().str.replace(r"\.0+$", "", regex=True)
    s = s.where(~s.str.fullmatch(r"\d{4}"), "0" + s)
    s = s.where(~s.str.fullmatch(r"2[AB]\d{2}"), s)  # 4-char Corsican codes are not padded
    return s.where(codes.notna() & (s != ""))


def valid_commune_codes(codes: pd.Series) -> pd.Series:
    """Return the commune codes of :func:`normalise_codes` that are well formed, else NA.

    Well formed: 5 digits, or ``2A``/``2B`` and 3 digits (``1001`` → ``01001``,
    ``15014.0`` → ``15014``; ``ZA001``, ``123`` or a name → NA). Whether the code exists
    in the COG is not checked (:func:`harmonise_codes` does).
    """
    norm = normalise_codes(codes)
    return norm.where(norm.str.fullmatch(_CODE_RE).fillna(False).astype(bool))


def normalise_dep_codes(codes: pd.Series) -> pd.Series:
    """Département codes as strings: ``1`` → ``01``, ``2a`` → ``2A``, ``971`` kept."""
    s = codes.astype("str").str.strip().str.upper().str.replace(r"\.0+$", "", regex=True)
    s = s.where(~s.str.fullmatch(r"\d"), "0" + s)
    return s.where(codes.notna() & (s != ""))


def normalise_dept(code: object) -> str:
    """One département code as the runs write it: ``1`` → ``01``, ``2a`` → ``2A``, ``za`` → ``ZA``.

    The scalar form of :func:`normalise_dep_codes` (the same rule).
    """
    c = str(code).strip().upper()
    if c.endswith(".0") and c[:-2].isdigit():
        c = c[:-2]
    return c.zfill(2) if c.isdigit() and len(c) < 2 else c


def dep_of_code(codes: pd.Series) -> pd.Series:
    """Département code of each commune code (3 characters for 97x, else 2)."""
    s = codes.astype("str")
    return s.str[:2].where(~s.str.startswith("97"), s.str[:3]).where(codes.notna())


def harmonise_codes(codes: pd.Series, *, file: str, column: str = "code_insee",
                    fictional: bool = False, problems: ProblemList | None = None) -> Harmonised:
    """Map commune codes to current COG 2026 codes.

    Parameters
    ----------
    codes
        Codes as read (any dtype); row ``i`` of the frame is reported as row ``i + 1``.
    file
        File name for the messages.
    column
        Column name for the messages.
    fictional
        The data set is the fictional demo territory: every code must then be a fictional
        ``Z…`` code, and no code is looked up in the COG.
    problems
        When given, bad codes are added to it (and are NA in the result) instead of being
        raised, so that a loader can report them with its other problems.

    Returns
    -------
    Harmonised
        Current codes, the remapped rows and a warning listing them.

    Raises
    ------
    UnknownCodeError
        Missing, malformed, unknown or ambiguous codes, and fictional codes in a real data
        set (or real codes in the fictional one), one problem per row (unless ``problems``
        is given).
    """
    norm = normalise_codes(codes)
    external = problems
    collect = external is not None
    own = ProblemList(file)
    problems = own
    missing = norm.isna()
    problems.add_rows(missing, column, "un code commune (5 caractères)", codes,
                      kind=UnknownCodeError)
    if fictional:
        bad = ~missing & ~norm.str.fullmatch(_FICTIONAL_RE).fillna(False)
        problems.add_rows(bad, column, "un code fictif de démonstration (Z + 4 caractères) "
                          "comme le reste de ces données fictives", codes, kind=UnknownCodeError)
        return _finish(Harmonised(norm.where(~bad)), own, collect, external)

    is_current = is_current_code(norm)
    is_fict = ~missing & norm.str.startswith(FICTIONAL_DEP_PREFIX).fillna(False)
    problems.add_rows(is_fict, column,
                      "un code COG en vigueur (les codes fictifs Z… ne sont acceptés que dans "
                      "les données fictives de démonstration, pas mêlés à des communes "
                      "réelles)", codes,
                      kind=UnknownCodeError)
    todo = ~missing & ~is_current & ~is_fict
    malformed = todo & ~norm.str.fullmatch(_CODE_RE).fillna(False)
    problems.add_rows(malformed, column,
                      "un code commune de 5 caractères (chiffres, ou 2A/2B + 3 chiffres)", codes,
                      kind=UnknownCodeError)
    todo &= ~malformed
    out = norm.copy()
    remapped = empty_remapped()
    if todo.any():
        passage = passage_codes()
        passage = passage[~passage["code_actuel_aussi"]]
        targets = passage.groupby("code_ancien")["code_actuel"].agg(
            lambda v: ",".join(sorted(set(v))))
        found = norm[todo].map(targets)
        ambiguous = found.str.contains(",", regex=False).fillna(False)
        unknown_mask = pd.Series(False, index=norm.index)
        unknown_mask[found.index[found.isna().to_numpy()]] = True
        problems.add_rows(unknown_mask, column,
                          "un code commune du COG 2026 ou un code ancien de la table de "
                          "passage", codes, kind=UnknownCodeError)
        amb_mask = pd.Series(False, index=norm.index)
        amb_mask[found.index[ambiguous.to_numpy()]] = True
        amb_found = norm.astype(object).copy()
        amb_found[amb_mask] = [f"{c} (code ancien partagé entre {t})"
                               for c, t in zip(norm[amb_mask], found[ambiguous], strict=True)]
        problems.add_rows(amb_mask, column,
                          "un code commune sans ambiguïté (donnez le code en vigueur)", amb_found,
                          kind=UnknownCodeError)
        ok = found.notna() & ~ambiguous
        idx = found.index[ok.to_numpy()]
        out[idx] = found[ok]
        positions = np.flatnonzero(norm.index.isin(idx))
        remapped = pd.DataFrame({
            "row": (positions + 1).astype("int64"),
            "column": column,
            "code_ancien": norm.iloc[positions].to_numpy(),
            "code_actuel": out.iloc[positions].to_numpy(),
        })
    unresolved = missing | is_fict | malformed
    if todo.any():
        unresolved |= unknown_mask | amb_mask
    out = out.where(~unresolved)
    warnings = []
    if len(remapped):
        listed = ", ".join(f"ligne {r} {a}→{b}" for r, a, b in
                           remapped[["row", "code_ancien", "code_actuel"]]
                           .head(MAX_LISTED_REMAPS).itertuples(index=False))
        more = len(remapped) - MAX_LISTED_REMAPS
        if more > 0:
            listed += f", … et {more} autre(s)"
        warnings.append(f"{file} : {len(remapped)} code(s) commune de millésimes COG "
                        f"antérieurs dans la colonne « {column} » remplacé(s) par les codes "
                        f"en vigueur : {listed}")
    return _finish(Harmonised(out, remapped, warnings), own, collect, external)


def _finish(result: Harmonised, own: ProblemList, collect: bool,
            external: ProblemList | None) -> Harmonised:
    if not collect:
        own.raise_if_any()
    elif external is not None:
        external.extend(own)
    return result
