"""Loader of waiting lists and annual activity returns (espaces de rencontre, médiation).

An activity return gives, per service or per département and per year, the families on the
waiting list at 31 December, the mean waiting time and activity counts. Files come from
spreadsheets with many spellings of the same heading; :func:`load_waiting` maps them to the
contract columns (:data:`coverage.schemas.WAITING` plus the activity extras of
:data:`WAITING_RETURNS`), validates every cell and returns one row per input row.

Column labels
-------------
A heading is first *normalised* (:func:`normalise_label`):

1. accents removed, lower case;
2. apostrophes (``'`` and ``’``), underscores, hyphens, dots, slashes, parentheses, colons,
   ``°`` and ``%`` become spaces;
3. a date suffix at 31 December (``31/12``, ``31 décembre``, optionally followed by a year)
   and unit words (``jours``, ``j``, ``en jours``) are dropped;
4. filler words are dropped: nombre, nb, nbre, n, de, des, du, d, la, le, les, l, en, au,
   aux, a, sur, par, total.

The normalised heading is then looked up in :data:`COLUMN_ALIASES` (whose aliases are
normalised the same way). Examples: « Nb familles en liste d'attente au 31/12 » →
``familles liste attente`` → ``familles_en_attente``; « Délai moyen (jours) » →
``delai moyen`` → ``delai_moyen_jours``; « Département » → ``departement`` → ``code_dep``.
Headings that match nothing are ignored with a warning; two headings mapping to the same
column are an error.

Cell values
-----------
- ``code_dep``: ``1``/``01``/``1.0`` → ``01``; ``2a`` → ``2A``; ``971``; a trailing name is
  allowed (``15 - Cantal`` → ``15``). It must be a current département of the national
  commune table, or a département of the ``communes`` given. Fictional codes (prefix ``Z``,
  the demo territory) are accepted without ``communes`` only when loading the demo.
- ``type_service``: ``espace_rencontre`` for any label containing « rencontre » or equal to
  « ER »; ``mediation_familiale`` for any label containing « médiation » or equal to « MF »;
  other types of ``settings.service_types`` by their exact name.
- ``annee``: an integer year in [:data:`MIN_YEAR`, current year], or a date whose year is
  taken (``2023-12-31``, ``31/12/2023``).
- counts (families, measures, interviews, mediations): whole numbers from 0 to
  :data:`MAX_COUNT`; spaces as thousands separators are allowed; an empty cell means *not
  reported* (missing, never 0).
- ``delai_moyen_jours``: a number of days from 0 to :data:`MAX_DELAY_DAYS`, ``.`` or ``,``
  as decimal mark; empty = not reported.
- One row per (code_dep, type_service, annee[, service]): duplicates are errors, and so is a
  département row mixed with per-service rows for the same département, type and year (the
  counts would be added twice).
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage._validate import empty_remapped
from coverage.cog import national_communes, normalise_dept
from coverage.demo import demo_paths
from coverage.errors import (
    DuplicateIdError,
    InputError,
    MissingColumnError,
    Problem,
)
from coverage.files import sha256_file
from coverage.io.tables import Loaded, read_table
from coverage.labels import fr_int
from coverage.schemas import PERIODE, TYPE_PERIODE, WAITING, Contract, Field
from coverage.settings import Settings, is_fictional_code

__all__ = [
    "COLUMN_ALIASES",
    "COUNT_COLUMNS",
    "DEFAULT_SOURCE",
    "ER_EXTRAS",
    "EXTRA_COUNTS",
    "HEADER_SCAN_ROWS",
    "MAX_COUNT",
    "MAX_DELAY_DAYS",
    "MF_EXTRAS",
    "MIN_YEAR",
    "PERIOD_KINDS",
    "PERIOD_KIND_LABELS",
    "RETURN_SUFFIXES",
    "SOURCES",
    "WAITING_RETURNS",
    "Period",
    "WaitingFile",
    "WaitingReturns",
    "WaitingSpecs",
    "load_waiting",
    "load_waiting_files",
    "match_column",
    "normalise_dep",
    "normalise_label",
    "normalise_source",
    "normalise_type_service",
    "parse_period",
    "parse_waiting_arg",
    "shift_period",
    "source_from_name",
    "waiting_files",
    "waiting_paths",
]


log = logging.getLogger(__name__)

#: Earliest year accepted in a return (the national ER survey of reference is 2018).
MIN_YEAR = 2000
#: Largest count accepted in a return (families, measures…): checked before any integer cast.
MAX_COUNT = 1_000_000
#: Longest mean waiting time accepted, days (ten years).
MAX_DELAY_DAYS = 3650

#: Count columns of activity returns besides ``familles_en_attente`` (all optional).
ER_EXTRAS: tuple[str, ...] = ("familles_recues", "mesures_judiciaires",
                              "demandes_spontanees")
MF_EXTRAS: tuple[str, ...] = ("entretiens_information", "mediations",
                              "mediations_engagees", "mediations_terminees")
EXTRA_COUNTS: tuple[str, ...] = ER_EXTRAS + MF_EXTRAS
COUNT_COLUMNS: tuple[str, ...] = ("familles_en_attente", *EXTRA_COUNTS)

_EXTRA_FIELDS: tuple[Field, ...] = (
    Field("nom_service", "string", False, "", "Nom du service",
          "Nom du service (retours par service)."),
    Field("familles_recues", "integer", False, "familles", "Familles reçues",
          "Familles reçues / accueillies dans l'année (espaces de rencontre)."),
    Field("mesures_judiciaires", "integer", False, "mesures", "Mesures judiciaires",
          "Mesures ordonnées par le juge (espaces de rencontre)."),
    Field("demandes_spontanees", "integer", False, "demandes", "Demandes spontanées",
          "Accès sur demande des familles, hors décision de justice (espaces de rencontre)."),
    Field("entretiens_information", "integer", False, "entretiens",
          "Entretiens d'information", "Entretiens d'information préalable (médiation)."),
    Field("mediations", "integer", False, "médiations", "Médiations",
          "Médiations familiales de l'année, quand le retour ne distingue pas engagées et "
          "terminées."),
    Field("mediations_engagees", "integer", False, "médiations", "Médiations engagées",
          "Médiations familiales engagées dans l'année."),
    Field("mediations_terminees", "integer", False, "médiations", "Médiations terminées",
          "Médiations familiales terminées dans l'année."),
    Field("fictif", "boolean", False, "", "Fictif",
          "Vrai pour le territoire de démonstration FICTIF."),
    replace(PERIODE, required=False),
    replace(TYPE_PERIODE, required=False),
    Field("date_periode", "date", False, "", "Date de la période",
          "Fin de la période (date à laquelle la liste d'attente est observée)."),
    Field("source", "string", False, "", "Source",
          "Partenaire qui a transmis le retour : CAF, MSA, cour d'appel, service, autre."),
    Field("fichier", "string", False, "", "Fichier", "Nom du fichier du retour."),
    Field("ligne", "integer", False, "", "Ligne",
          "Ligne du fichier (1 = première ligne de données)."),
    Field("date_retour", "date", False, "", "Date du retour",
          "Date de transmission du retour (vide si non indiquée)."),
)

#: The waiting-list contract plus the activity-return extras: the columns of
#: ``load_waiting(...).data``.
WAITING_RETURNS = Contract("retours_activite", "Listes d'attente et retours d'activité",
                           WAITING.fields + _EXTRA_FIELDS)

#: Contract column → accepted headings (matched after :func:`normalise_label`).
COLUMN_ALIASES: Mapping[str, tuple[str, ...]] = {
    "code_dep": ("code_dep", "Département", "Code département", "Code_departement", "dep",
                 "dept", "code dept", "N° département", "Numéro de département"),
    "type_service": ("type_service", "Type de service", "Type", "Service type",
                     "Type de structure", "Nature du service", "Activité"),
    "annee": ("annee", "Année", "Exercice", "Année d'activité", "Année de référence",
              "year"),
    "periode": ("periode", "Période", "period", "Période d'activité", "Période de référence",
                "Date d'observation", "Date de l'observation", "Mois", "Trimestre",
                "Semestre"),
    "source": ("source", "Partenaire", "Provenance", "Origine", "Émetteur",
               "Organisme déclarant"),
    "date_retour": ("date_retour", "Date du retour", "Date de retour",
                    "Date de transmission", "Date d'envoi"),
    "service_id": ("service_id", "Identifiant du service", "Id service", "Identifiant",
                   "Code service", "id"),
    "nom_service": ("nom_service", "Nom du service", "Service", "Structure",
                    "Nom de la structure", "Nom"),
    "familles_en_attente": (
        "familles_en_attente", "Familles en attente", "Nb familles en attente",
        "Nb familles en liste d'attente au 31/12", "Nombre de familles en liste d'attente",
        "Familles sur liste d'attente", "Familles en liste d'attente au 31 décembre",
        "Liste d'attente", "Liste d'attente au 31/12", "Familles liste attente",
        "Situations en attente",
    ),
    "delai_moyen_jours": (
        "delai_moyen_jours", "Délai moyen (jours)", "Délai moyen", "Délai moyen d'attente",
        "Délai moyen d'attente (jours)", "Délai d'attente moyen", "Délai d'attente",
        "Délai d'attente (jours)", "Délai moyen d'attente en jours", "Attente moyenne (jours)",
    ),
    "familles_recues": ("familles_recues", "Familles accueillies",
                             "Familles reçues", "Nb familles reçues",
                             "Familles reçues / accueillies", "Familles prises en charge"),
    "mesures_judiciaires": ("mesures_judiciaires", "Mesures ordonnées par le juge",
                            "Mesures judiciaires", "Mesures ordonnées",
                            "Décisions judiciaires", "Orientations JAF",
                            "Ordonnances du juge"),
    "demandes_spontanees": ("demandes_spontanees", "Demandes spontanées",
                            "Démarches spontanées", "Accès spontané",
                            "Demandes volontaires"),
    "entretiens_information": ("entretiens_information", "Entretiens d'information",
                               "Entretiens d'information préalable",
                               "Entretiens préalables", "Entretiens d'info"),
    "mediations": ("mediations", "Médiations", "Nombre de médiations",
                   "Médiations familiales", "Mesures de médiation"),
    "mediations_engagees": ("mediations_engagees", "Médiations engagées",
                            "Médiations ouvertes", "Médiations commencées",
                            "Mesures de médiation engagées"),
    "mediations_terminees": ("mediations_terminees", "Médiations terminées",
                             "Médiations achevées", "Médiations clôturées"),
}

_STOPWORDS = frozenset({"nombre", "nb", "nbre", "n", "de", "des", "du", "d", "la", "le", "les",
                        "l", "en", "au", "aux", "a", "sur", "par", "total"})
_PUNCT = re.compile(r"[’'`´_\-./()\[\]:;,°%\\]+")
_DATE_31_12 = re.compile(r"\b31 (12|decembre)( \d{2,4})?\b")
_UNIT = re.compile(r"\b(en jours|jours|jour|j)\b")


def normalise_label(label: object) -> str:
    """Normalised form of a column heading, used to match it to a contract column.

    Parameters
    ----------
    label
        A heading as read from the file.

    Returns
    -------
    str
        Lower case, without accents, punctuation, 31-December suffix, unit words and filler
        words (see the module docstring). E.g. « Nb familles en liste d'attente au 31/12 » →
        ``"familles liste attente"``.
    """
    s = unicodedata.normalize("NFKD", str(label))
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    s = _PUNCT.sub(" ", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = _DATE_31_12.sub(" ", s)
    s = _UNIT.sub(" ", s)
    return " ".join(t for t in s.split() if t not in _STOPWORDS)


def _alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for column, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            key = normalise_label(alias)
            if index.setdefault(key, column) != column:  # pragma: no cover - table bug
                msg = f"alias {alias!r} maps to both {index[key]} and {column}"
                raise AssertionError(msg)
    return index


_ALIAS_INDEX = _alias_index()


def match_column(label: object) -> str | None:
    """Contract column of a heading, or None when it matches no alias."""
    return _ALIAS_INDEX.get(normalise_label(label))


def normalise_type_service(value: object, service_types: tuple[str, ...]) -> str | None:
    """Contract ``type_service`` of a cell (« Espace de rencontre », « MF »…), else None."""
    s = normalise_label(value)
    if not s:
        return None
    raw = str(value).strip()
    if raw in service_types:
        return raw
    if s == "er" or "rencontre" in s:
        return "espace_rencontre" if "espace_rencontre" in service_types else None
    if s == "mf" or "mediation" in s:
        return "mediation_familiale" if "mediation_familiale" in service_types else None
    for t in service_types:
        if s == normalise_label(t):
            return t
    return None


_DEP_RE = re.compile(r"^(\d{1,3}|2[AB]|Z[A-Z0-9]+)(?:\.0+)?(?:(?:\s*[-–—:]\s*|\s+)\D.*)?$")


def normalise_dep(value: object) -> str | None:
    """Return the département code of a cell, or None when it does not look like a code.

    ``1``/``1.0`` → ``01``, ``2a`` → ``2A``, ``15 - Cantal`` → ``15`` (the code rule is
    :func:`coverage.cog.normalise_dept`).
    """
    s = str(value).strip()
    m = _DEP_RE.match(s.upper()) if s else None
    if m is None:
        return None
    return normalise_dept(m.group(1))


def _parse_number(value: object) -> float | None:
    """Parse a float from a cell (``1 234``, ``12,5``, ``12.0``); None when empty, NaN when bad."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool):
        return float("nan")
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    s = str(value).strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    if s == "" or s.lower() in {"nan", "na", "n/a", "nr", "nd", "-"}:
        return None
    s = s.replace(",", ".")
    try:
        out = float(s)
    except ValueError:
        return float("nan")
    return out if np.isfinite(out) else float("nan")


_DATE_YEAR = re.compile(r"^(?:(\d{4})-\d{1,2}-\d{1,2}(?:[T ].*)?|\d{1,2}/\d{1,2}/(\d{4}))$")


def _parse_year(value: object) -> float | None:
    """Parse a year from a cell; None when empty, NaN when not a year.

    ``2023``, ``2023.0``, or the year of a date (``2023-12-31``, ``31/12/2023``).
    """
    m = _DATE_YEAR.match(_text(value))
    if m:
        return float(m.group(1) or m.group(2))
    return _parse_number(value)


def _text(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


# --- Periods ------------------------------------------------------------------------------

#: Kinds of period, from the longest to the shortest; ``date`` is a date of observation.
PERIOD_KINDS: tuple[str, ...] = ("annee", "semestre", "trimestre", "mois", "date")
#: French adjective of each kind of period (notes of the charts and tables).
PERIOD_KIND_LABELS: Mapping[str, str] = {
    "annee": "annuelle", "semestre": "semestrielle", "trimestre": "trimestrielle",
    "mois": "mensuelle", "date": "date d'observation"}
_MONTHS_PER = {"annee": 12, "semestre": 6, "trimestre": 3, "mois": 1}


@dataclass(frozen=True)
class Period:
    """A period of a return.

    Attributes
    ----------
    label
        Canonical label: ``2025``, ``2025-S1``, ``2025-T3``, ``2025-03`` or ``2025-03-31``.
    kind
        One of :data:`PERIOD_KINDS`.
    start, end
        First and last day of the period (the same day for a date of observation). The
        waiting list is the one observed at ``end``.
    """

    label: str
    kind: str
    start: _dt.date
    end: _dt.date

    @property
    def year(self) -> int:
        """Return the calendar year of the period."""
        return self.start.year


def _month_end(year: int, month: int) -> _dt.date:
    nxt = _dt.date(year + month // 12, month % 12 + 1, 1)
    return nxt - _dt.timedelta(days=1)


def _sub_period(year: int, kind: str, index: int) -> Period:
    """Return the ``index``-th (1-based) half-year, quarter or month of ``year``."""
    size = _MONTHS_PER[kind]
    first = (index - 1) * size + 1
    label = {"semestre": f"{year}-S{index}", "trimestre": f"{year}-T{index}",
             "mois": f"{year}-{index:02d}"}[kind]
    return Period(label, kind, _dt.date(year, first, 1), _month_end(year, first + size - 1))


def _annual(year: int) -> Period:
    return Period(str(year), "annee", _dt.date(year, 1, 1), _dt.date(year, 12, 31))


_P_YEAR = re.compile(r"^(\d{4})(?:\.0+)?$")
_P_HALF = re.compile(r"^(?:(\d{4})\s*[-/ ]?\s*S([12])|S([12])\s*[-/ ]?\s*(\d{4}))$")
_P_QUARTER = re.compile(r"^(?:(\d{4})\s*[-/ ]?\s*[TQ]([1-4])|[TQ]([1-4])\s*[-/ ]?\s*(\d{4}))$")
_P_MONTH = re.compile(r"^(?:(\d{4})-(\d{1,2})|(\d{1,2})/(\d{4}))$")
_P_DATE = re.compile(r"^(?:(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][\d:.]*)?|"
                     r"(\d{1,2})/(\d{1,2})/(\d{4}))$")


def _first(m: re.Match[str], *groups: int) -> int:
    return int(next(m.group(g) for g in groups if m.group(g) is not None))


def _date_period(m: re.Match[str]) -> Period:
    day = _dt.date(_first(m, 1, 6), _first(m, 2, 5), _first(m, 3, 4))
    return Period(day.isoformat(), "date", day, day)


_PERIOD_PARSERS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], Period]], ...] = (
    (_P_YEAR, lambda m: _annual(int(m.group(1)))),
    (_P_HALF, lambda m: _sub_period(_first(m, 1, 4), "semestre", _first(m, 2, 3))),
    (_P_QUARTER, lambda m: _sub_period(_first(m, 1, 4), "trimestre", _first(m, 2, 3))),
    (_P_MONTH, lambda m: _sub_period(_first(m, 1, 4), "mois", _first(m, 2, 3))),
    (_P_DATE, _date_period),
)


def parse_period(value: object) -> Period | None:
    """Return the period of a cell, or None when it is not a period.

    Accepted: ``2025`` (year), ``2025-S1`` / ``S1 2025`` (half-year), ``2025-T3`` /
    ``2025-Q3`` / ``T3 2025`` (quarter), ``2025-03`` / ``03/2025`` (month), a date of
    observation ``2025-03-31`` / ``31/03/2025`` (or an Excel date cell).

    Parameters
    ----------
    value
        The cell.

    Returns
    -------
    Period or None
        None for an empty or unreadable cell (month 13, 31 February…).
    """
    s = _text(value).upper()
    for pattern, build in _PERIOD_PARSERS:
        m = pattern.match(s)
        if m:
            try:
                return build(m)
            except ValueError:  # month 13, 31 February…
                return None
    return None
    return None


def shift_period(label: str, kind: str, years: int = 0, steps: int = 0) -> str | None:
    """Return the label of the period ``steps`` periods and ``years`` years away.

    Parameters
    ----------
    label, kind
        A period (:attr:`Period.label`, :attr:`Period.kind`).
    years
        Whole years to add (negative: earlier). For a date, the same day ``years`` away
        (None for 29 February without a match).
    steps
        Periods of the same kind to add (not for dates: None).

    Returns
    -------
    str or None
        The shifted label.
    """
    p = parse_period(label)
    if p is None or p.kind != kind:
        return None
    if kind == "date":
        if steps:
            return None
        try:
            return p.end.replace(year=p.end.year + years).isoformat()
        except ValueError:
            return None
    size = _MONTHS_PER[kind]
    months = p.start.year * 12 + p.start.month - 1 + years * 12 + steps * size
    year, month0 = divmod(months, 12)
    return _annual(year).label if kind == "annee" else \
        _sub_period(year, kind, month0 // size + 1).label


# --- Sources ------------------------------------------------------------------------------

#: Partners a return may come from (column ``source``).
SOURCES: tuple[str, ...] = ("CAF", "MSA", "cour d'appel", "service", "autre")
#: Source of rows whose file has no ``source`` column and none was given for the file.
DEFAULT_SOURCE = "autre"


def normalise_source(value: object) -> str | None:
    """Return the source of a cell (« caf », « CAF du Cantal », « Cour d'appel de Riom »…).

    Parameters
    ----------
    value
        The cell, or a source given for a whole file.

    Returns
    -------
    str or None
        One of :data:`SOURCES`, None when it is none of them (or empty).
    """
    s = normalise_label(value)
    first = s.split(" ")[0] if s else ""
    if first in {"caf", "cnaf"}:
        return "CAF"
    if first in {"msa", "ccmsa"}:
        return "MSA"
    if s.startswith("cour appel") or s in {"ca", "cours appel"}:
        return "cour d'appel"
    if first in {"service", "services", "structure", "gestionnaire"}:
        return "service"
    if first in {"autre", "autres", "other"}:
        return "autre"
    return None


def source_from_name(name: str | Path) -> str | None:
    """Return the source a file name starts with (``caf_2025.csv`` → CAF), else None.

    Parameters
    ----------
    name
        A file name or path (only its name counts).

    Returns
    -------
    str or None
        One of :data:`SOURCES` when the first word of the name is one
        (:func:`normalise_source`), else None.
    """
    stem = Path(name).name.split(".")[0]
    return normalise_source(stem)


def _valid_departements(communes: pd.DataFrame | None) -> set[str]:
    codes = set(national_communes()["code_dep"].dropna().astype(str))
    if communes is not None and "code_dep" in communes.columns:
        codes |= set(communes["code_dep"].dropna().astype(str))
    return codes


def load_waiting(
    path: str | Path | None = None,
    *,
    communes: pd.DataFrame | gpd.GeoDataFrame | None = None,
    settings: Settings = Settings(),
    source: str | None = None,
) -> Loaded:
    """Read and validate a waiting-list / activity-return file (CSV or XLSX).

    Parameters
    ----------
    path
        CSV (``,`` or ``;``, UTF-8 ± BOM, Latin-1/CP1252) or XLSX file. None → the
        fictional demo's waiting lists (``coverage.demo.demo_paths().waiting``).
    communes
        Communes of the run (``code_dep`` column): their départements are accepted besides
        the current national ones (this is how the fictional ``Z…`` codes are accepted).
    settings
        ``service_types`` (accepted types) and ``max_input_bytes``.
    source
        Source of the rows whose ``source`` cell is empty or absent (one of
        :data:`SOURCES`); None → the source the file name starts with
        (:func:`source_from_name`), else :data:`DEFAULT_SOURCE` with a warning.

    Returns
    -------
    Loaded
        ``data``: one row per input row with the columns of :data:`WAITING_RETURNS`
        (``code_dep``, ``type_service``, ``annee`` (int), ``familles_en_attente``
        (Int64, families), ``delai_moyen_jours`` (float, days, NaN = not reported),
        ``service_id`` (str or None), ``nom_service``, the extra counts (Int64),
        ``fictif`` (bool), the period (``periode``, ``type_periode``, ``date_periode``
        (datetime64, end of the period)) and the provenance (``source``, ``fichier``: the
        file name, ``ligne``: 1-based data row, ``date_retour``: datetime64 or NaT)).
        ``warnings``: ignored headings, absent measure columns, defaulted source.

    Raises
    ------
    InputError
        With one :class:`~coverage.errors.Problem` per bad cell (file, 1-based data row,
        column as written in the file, what was expected). Subclasses: EmptyInputError,
        MissingColumnError, DuplicateIdError.
    """
    demo = path is None
    if path is None:
        path = demo_paths().waiting
    path = Path(path)
    name = str(path)
    raw = read_table(path, max_bytes=settings.max_input_bytes)
    warnings: list[str] = []
    if isinstance(raw, gpd.GeoDataFrame):
        raw = pd.DataFrame(raw.drop(columns=raw.geometry.name))
    raw = _skip_title_rows(raw, name, warnings)
    mapping, seen = _map_headings(raw, name, warnings)

    default_source = _file_source(name, source)
    ctx = _Cells(name=name, seen=seen, valid_deps=frozenset(_valid_departements(communes)),
                 fictional_alone=demo and communes is None,
                 service_types=settings.service_types, today=_dt.date.today(),
                 default_source=default_source)
    records = raw.rename(columns=mapping)
    values = records[[c for c in records.columns if c in seen]].to_dict(orient="list")
    problems: list[Problem] = []
    rows = [ctx.parse_row({str(c): v[i] for c, v in values.items()}, i + 1, problems)
            for i in range(len(raw))]
    data = pd.DataFrame(rows, columns=WAITING_RETURNS.columns)
    data["fichier"] = path.name
    data["ligne"] = range(1, len(data) + 1)
    if data["service_id"].isna().all() and data["nom_service"].notna().any():
        data["service_id"] = data["nom_service"]
        warnings.append(f"{name} : pas de colonne d'identifiant de service ; les services sont "
                        "identifiés par leur nom")
    duplicates: list[Problem] = []
    _check_duplicates(data, name, seen, duplicates)
    if problems:
        all_problems = sorted(problems + duplicates, key=lambda p: p.row or 0)
        raise InputError(all_problems)
    if duplicates:
        raise DuplicateIdError(duplicates)

    data = _typed(data)
    log.info("%s: %d waiting-list rows, %d départements, periods %s–%s", name, len(data),
             data["code_dep"].nunique(), data["periode"].min(), data["periode"].max())
    return Loaded(data=data, warnings=warnings, remapped=empty_remapped(), path=name)


def _file_source(name: str, source: str | None) -> str:
    """Return the source of the rows of a file whose ``source`` cell is empty or absent.

    Raises
    ------
    InputError
        ``source`` is given but is not one of :data:`SOURCES`.
    """
    if source is not None:
        given = normalise_source(source)
        if given is None:
            raise InputError(Problem(name, None, "source", "une source parmi "
                                     + ", ".join(SOURCES), str(source)))
        return given
    from_name = source_from_name(name)
    return DEFAULT_SOURCE if from_name is None else from_name


def _map_headings(raw: pd.DataFrame, name: str,
                  warnings: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Map the file's headings to contract columns.

    Returns
    -------
    tuple of dict
        File heading → contract column, and contract column → file heading.

    Raises
    ------
    MissingColumnError
        A required column is absent, or two headings give the same column.
    """
    mapping: dict[str, str] = {}  # file heading -> contract column
    seen: dict[str, str] = {}
    problems: list[Problem] = []
    ignored: list[str] = []
    for col in raw.columns:
        target = match_column(col)
        if target is None:
            if str(col).strip() and not str(col).startswith("Unnamed"):
                ignored.append(str(col))
            continue
        if target in seen:
            problems.append(Problem(name, None, str(col),
                                    f"une seule colonne pour {target} (déjà donnée par "
                                    f"« {seen[target]} »)"))
            continue
        seen[target] = str(col)
        mapping[str(col)] = target
    if ignored:
        warnings.append(f"{name} : colonnes ignorées (aucune colonne du contrat ne "
                        f"correspond, voir docs/listes_attente.md) : {', '.join(ignored)}")
    problems += [Problem(name, None, req, f"une colonne {req} (par exemple l'une de "
                         f"{', '.join(COLUMN_ALIASES[req][:3])})")
                 for req in ("code_dep", "type_service") if req not in seen]
    if "annee" not in seen and "periode" not in seen:
        problems.append(Problem(name, None, "annee", "une colonne annee ou periode (par "
                                "exemple l'une de annee, Année, Période)"))
    if "familles_en_attente" not in seen and "delai_moyen_jours" not in seen:
        problems.append(Problem(name, None, "familles_en_attente",
                                "une colonne familles_en_attente ou delai_moyen_jours"))
    if problems:
        raise MissingColumnError(problems)
    warnings += [f"{name} : pas de colonne {col} ; valeurs manquantes (non déclarées)"
                 for col in ("familles_en_attente", "delai_moyen_jours") if col not in seen]
    return mapping, seen


@dataclass(frozen=True)
class _Cells:
    """How the cells of one file are read and checked (one row at a time)."""

    name: str
    seen: Mapping[str, str]
    valid_deps: frozenset[str]
    fictional_alone: bool
    service_types: tuple[str, ...]
    today: _dt.date
    default_source: str = DEFAULT_SOURCE

    def parse_row(self, cells: Mapping[str, object], row: int,
                  problems: list[Problem]) -> dict[str, Any]:
        """Return the contract values of one data row (1-based ``row``); add its problems."""
        out: dict[str, Any] = dict.fromkeys(WAITING_RETURNS.columns)
        out["code_dep"] = self._dep(_text(cells.get("code_dep")), row, problems)
        out["type_service"] = self._type(_text(cells.get("type_service")), row, problems)
        period = self._period(cells, row, problems)
        if period is not None:
            out.update(annee=period.year, periode=period.label, type_periode=period.kind,
                       date_periode=period.end)
        out["source"] = self._source(cells.get("source"), row, problems)
        if "date_retour" in self.seen:
            out["date_retour"] = self._date(cells.get("date_retour"), row, problems)
        for col in COUNT_COLUMNS:
            if col in self.seen:
                out[col] = self._count(col, cells.get(col), row, problems)
        if "delai_moyen_jours" in self.seen:
            out["delai_moyen_jours"] = self._delay(cells.get("delai_moyen_jours"), row,
                                                   problems)
        for col in ("service_id", "nom_service"):
            if col in self.seen:
                out[col] = _text(cells.get(col)) or None
        return out

    def _problem(self, row: int, col: str, expected: str, found: object) -> Problem:
        return Problem(self.name, row, self.seen[col], expected, _text(found))

    def _dep(self, txt: str, row: int, problems: list[Problem]) -> str | None:
        dep = normalise_dep(txt)
        if dep is None:
            problems.append(self._problem(row, "code_dep",
                                          "un code de département (01…95, 2A, 2B, 971…976)", txt))
        elif dep not in self.valid_deps and not (self.fictional_alone
                                                 and is_fictional_code(dep)):
            problems.append(self._problem(row, "code_dep",
                                          "un code de département en vigueur (COG) ou un "
                                          "département du fichier des communes", txt))
        return dep

    def _type(self, txt: str, row: int, problems: list[Problem]) -> str | None:
        typ = normalise_type_service(txt, self.service_types)
        if typ is None:
            problems.append(self._problem(row, "type_service",
                                          "un type de service (" + ", ".join(self.service_types)
                                          + ", ou « Espace de rencontre », « Médiation "
                                          "familiale », « ER », « MF »)", txt))
        return typ

    def _year(self, cell: object, row: int, problems: list[Problem]) -> int | None:
        v = _parse_year(cell)
        if v is None or np.isnan(v) or v != int(v):
            problems.append(self._problem(row, "annee", "une année (par exemple 2023)", cell))
        elif not MIN_YEAR <= v <= self.today.year:
            problems.append(self._problem(row, "annee",
                                          f"une année entre {MIN_YEAR} et {self.today.year}",
                                          cell))
        else:
            return int(v)
        return None

    def _period(self, cells: Mapping[str, object], row: int,
                problems: list[Problem]) -> Period | None:
        """Return the period of a row: its ``periode`` cell, else its ``annee`` (a year)."""
        if "periode" not in self.seen:
            year = self._year(cells.get("annee"), row, problems)
            return None if year is None else _annual(year)
        cell = cells.get("periode")
        p = parse_period(cell)
        if p is None:
            problems.append(self._problem(
                row, "periode", "une période : 2025, 2025-S1, 2025-T3, 2025-03 ou une date "
                "d'observation 2025-03-31", cell))
        elif p.year < MIN_YEAR:
            problems.append(self._problem(row, "periode", f"une période à partir de {MIN_YEAR}",
                                          cell))
        elif p.start > self.today:
            problems.append(self._problem(
                row, "periode", f"une période commencée au plus tard aujourd'hui "
                f"({self.today.isoformat()}), pas une période future", cell))
        elif "annee" in self.seen and _text(cells.get("annee")) and \
                _parse_year(cells.get("annee")) != p.year:
            problems.append(self._problem(row, "annee", f"l'année de la période ({p.year})",
                                          cells.get("annee")))
        else:
            return p
        return None

    def _source(self, cell: object, row: int, problems: list[Problem]) -> str | None:
        txt = _text(cell)
        if not txt:
            return self.default_source
        src = normalise_source(txt)
        if src is None:
            problems.append(self._problem(row, "source",
                                          "une source parmi " + ", ".join(SOURCES), txt))
        return src

    def _date(self, cell: object, row: int, problems: list[Problem]) -> _dt.date | None:
        if not _text(cell):
            return None
        p = parse_period(cell)
        if p is None or p.kind != "date":
            problems.append(self._problem(row, "date_retour",
                                          "une date (2025-04-15 ou 15/04/2025) ou une cellule vide",
                                          cell))
        elif p.end > self.today:
            problems.append(self._problem(row, "date_retour",
                                          "une date au plus tard aujourd'hui "
                                          f"({self.today.isoformat()})", cell))
        else:
            return p.end
        return None

    def _count(self, col: str, cell: object, row: int, problems: list[Problem]) -> int | None:
        v = _parse_number(cell)
        if v is None:
            return None
        if np.isnan(v) or not -MAX_COUNT <= v <= MAX_COUNT or v != int(v):
            problems.append(self._problem(
                row, col, f"un nombre entier entre 0 et {fr_int(MAX_COUNT)} ou une cellule "
                "vide", cell))
        elif v < 0:
            problems.append(self._problem(row, col, "un effectif ≥ 0", cell))
        else:
            return int(v)
        return None

    def _delay(self, cell: object, row: int, problems: list[Problem]) -> float | None:
        v = _parse_number(cell)
        if v is None:
            return None
        if np.isnan(v):
            problems.append(self._problem(row, "delai_moyen_jours",
                                          "un nombre de jours ou une cellule vide", cell))
        elif not 0 <= v <= MAX_DELAY_DAYS:
            problems.append(self._problem(row, "delai_moyen_jours",
                                          f"un nombre de jours entre 0 et {MAX_DELAY_DAYS}",
                                          cell))
        else:
            return v
        return None


def _typed(data: pd.DataFrame) -> pd.DataFrame:
    """Give each column of valid rows its contract type (counts Int64, delays float)."""
    data["code_dep"] = data["code_dep"].astype("str")
    data["type_service"] = data["type_service"].astype("str")
    data["annee"] = data["annee"].astype("int64")
    for col in COUNT_COLUMNS:
        data[col] = pd.array(data[col].tolist(), dtype="Int64")
    data["delai_moyen_jours"] = pd.to_numeric(data["delai_moyen_jours"]).astype("float64")
    data["fictif"] = data["code_dep"].map(is_fictional_code).astype(bool)
    for col in ("periode", "type_periode", "source", "fichier"):
        data[col] = data[col].astype("str")
    data["date_periode"] = pd.to_datetime(data["date_periode"])
    data["date_retour"] = pd.to_datetime(data["date_retour"])
    data["ligne"] = data["ligne"].astype("int64")
    return data[WAITING_RETURNS.columns]


#: Rows scanned for the heading row when the first row is a title (spreadsheets).
HEADER_SCAN_ROWS = 10
_KEY_COLUMNS = ("code_dep", "type_service", "annee")


def _skip_title_rows(raw: pd.DataFrame, name: str, warnings: list[str]) -> pd.DataFrame:
    """Use the first of the top rows that holds the key headings when the header does not.

    Spreadsheet returns often start with a title (« Retours d'activité 2023 ») above the
    heading row. Row numbers of the messages then count from the row after the headings
    (the warning gives its position).
    """
    def keys(labels: list[object]) -> int:
        found = {match_column(v) for v in labels}
        found |= {"annee"} if "periode" in found else set()
        return len(found & set(_KEY_COLUMNS))

    if keys(list(raw.columns)) == len(_KEY_COLUMNS):
        return raw
    for r in range(min(HEADER_SCAN_ROWS, len(raw))):
        labels = [_text(v) for v in raw.iloc[r].tolist()]
        if keys(list(labels)) == len(_KEY_COLUMNS):
            out = raw.iloc[r + 1:].reset_index(drop=True)
            out.columns = [lab or f"Unnamed: {j}" for j, lab in enumerate(labels)]
            warnings.append(f"{name} : en-têtes lus sur la ligne de données {r + 1} (lignes de "
                            "titre au-dessus ignorées) ; les numéros de ligne comptent à partir "
                            "de la ligne qui suit les en-têtes")
            return out
    return raw


def _check_duplicates(data: pd.DataFrame, name: str, seen: Mapping[str, str],
                      problems: list[Problem]) -> None:
    column = seen.get("service_id", seen.get("nom_service", seen["code_dep"]))
    first: dict[tuple[Any, ...], int] = {}
    dep_rows: dict[tuple[Any, ...], int] = {}
    service_rows: dict[tuple[Any, ...], int] = {}
    mixed: set[tuple[Any, ...]] = set()
    for i, (dep, typ, period, sid) in enumerate(
        zip(data["code_dep"], data["type_service"], data["periode"], data["service_id"],
            strict=True)
    ):
        if dep is None or typ is None or period is None or pd.isna(period):
            continue
        key = (dep, typ, period)
        full = (*key, sid)
        sid = None if pd.isna(sid) else sid
        what = f"{dep}, {typ}, {period}" + ("" if sid is None else f", service {sid}")
        if full in first:
            problems.append(Problem(
                name, i + 1, column,
                f"une ligne par département, type et période"
                f"{'' if sid is None else ' et service'}"
                f" (comme la ligne {first[full]} : {what})"))
            continue
        first[full] = i + 1
        (dep_rows if sid is None else service_rows).setdefault(key, i + 1)
        if key in dep_rows and key in service_rows and key not in mixed:
            mixed.add(key)
            other = service_rows[key] if sid is None else dep_rows[key]
            problems.append(Problem(
                name, i + 1, column,
                f"soit des lignes par service, soit une ligne de département pour {dep}, {typ}, "
                f"{period} (la ligne {other} est de l'autre sorte : les effectifs seraient "
                "comptés deux fois)"))


# --- Several returns ----------------------------------------------------------------------

#: Extensions of the return files taken from a folder.
RETURN_SUFFIXES: tuple[str, ...] = (".csv", ".xlsx")


@dataclass(frozen=True)
class WaitingFile:
    """A return file and the source of its rows when the file does not say.

    Attributes
    ----------
    path
        CSV or XLSX file.
    source
        One of :data:`SOURCES` (any spelling :func:`normalise_source` reads), or None: the
        ``source`` column, else the file name (:func:`source_from_name`), else
        :data:`DEFAULT_SOURCE`.
    """

    path: Path
    source: str | None = None


def parse_waiting_arg(text: str | Path) -> WaitingFile:
    """Read one ``--waiting`` argument: ``FILE``, ``FOLDER`` or ``SOURCE=FILE``.

    Parameters
    ----------
    text
        E.g. ``retours_caf.csv``, ``CAF=retours.csv``, ``"cour d'appel=riom.xlsx"``.

    Returns
    -------
    WaitingFile
        The path and the source given before ``=`` (None when there is none; a prefix
        that is not a source is taken as part of the path).
    """
    raw = str(text)
    head, sep, tail = raw.partition("=")
    if sep and tail and normalise_source(head) is not None:
        return WaitingFile(Path(tail), head.strip())
    return WaitingFile(Path(raw))


#: What ``--waiting`` and ``load_inputs(waiting=...)`` accept: one file or folder, or several.
WaitingSpecs = str | Path | WaitingFile | Sequence[str | Path | WaitingFile]


def waiting_files(specs: WaitingSpecs) -> list[WaitingFile]:
    """Expand the ``--waiting`` arguments into files, in the order given.

    Parameters
    ----------
    specs
        One or several files, folders or ``SOURCE=FILE`` texts (:func:`parse_waiting_arg`).
        A folder gives
        its ``.csv`` and ``.xlsx`` files (not its sub-folders, not hidden files), sorted by
        name, with the folder's source when one is given.

    Returns
    -------
    list of WaitingFile
        One per file; the order is the *file order* of the reconciliation rule.

    Raises
    ------
    InputError
        A folder without any return file.
    """
    if isinstance(specs, str | Path | WaitingFile):
        specs = [specs]
    out: list[WaitingFile] = []
    for spec in specs:
        wf = spec if isinstance(spec, WaitingFile) else parse_waiting_arg(spec)
        if not wf.path.is_dir():
            out.append(wf)
            continue
        found = sorted(f for f in wf.path.iterdir() if f.is_file()
                       and not f.name.startswith((".", "~$"))
                       and f.name.lower().endswith(RETURN_SUFFIXES))
        if not found:
            raise InputError(Problem(str(wf.path), None, None,
                                     "un dossier contenant des fichiers de retour .csv ou .xlsx",
                                     "aucun"))
        out += [WaitingFile(f, wf.source) for f in found]
    return out


def waiting_paths(specs: WaitingSpecs | None) -> list[Path]:
    """Return the paths named by ``--waiting`` arguments (files or folders, not expanded).

    Parameters
    ----------
    specs
        As for :func:`waiting_files`; None → no path.

    Returns
    -------
    list of pathlib.Path
        The path of each argument, without its ``SOURCE=`` prefix.
    """
    if specs is None:
        return []
    if isinstance(specs, str | Path | WaitingFile):
        specs = [specs]
    return [s.path if isinstance(s, WaitingFile) else parse_waiting_arg(s).path
            for s in specs]


@dataclass(frozen=True)
class WaitingReturns:
    """Every row of several return files, with their provenance.

    Attributes
    ----------
    rows
        The rows of all files (:data:`WAITING_RETURNS` columns plus ``ordre_fichier``,
        0-based position of the file in the order given), not yet reconciled
        (:func:`coverage.waiting.reconcile_returns`).
    files
        One row per file (the « Sources » sheet): ``ordre_fichier``, ``fichier`` (name),
        ``chemin``, ``sha256`` (:func:`coverage.files.sha256_file`), ``source`` (given for
        the file, or the sources of its rows), ``lignes``.
    warnings
        Warnings of every file.
    """

    rows: pd.DataFrame
    files: pd.DataFrame
    warnings: list[str]

    @property
    def data(self) -> pd.DataFrame:
        """Return the rows (the name :class:`~coverage.io.tables.Loaded` uses)."""
        return self.rows

    @property
    def remapped(self) -> pd.DataFrame:
        """Return no remapped commune codes (returns hold département codes only)."""
        return empty_remapped()

    @property
    def path(self) -> str:
        """Return the files' paths, joined by `` ; ``."""
        return " ; ".join(self.files["chemin"].astype(str)) if len(self.files) else ""


def load_waiting_files(
    specs: WaitingSpecs,
    *,
    communes: pd.DataFrame | gpd.GeoDataFrame | None = None,
    settings: Settings = Settings(),
) -> WaitingReturns:
    """Read and validate several return files (files, folders, ``SOURCE=FILE``).

    Every file is checked with :func:`load_waiting`; the problems of all files are
    collected and raised together (one line per bad cell), so nothing is written when
    one file is bad.

    Parameters
    ----------
    specs
        See :func:`waiting_files`.
    communes
        Communes of the run (their départements are accepted).
    settings
        ``service_types`` and ``max_input_bytes``.

    Returns
    -------
    WaitingReturns

    Raises
    ------
    InputError
        One :class:`~coverage.errors.Problem` per bad cell of any file (the subclass of
        the only failing file when a single file fails).
    """
    files = waiting_files(specs)
    if not files:
        raise InputError(Problem("--waiting", None, None, "au moins un fichier de retour", ""))
    errors: list[InputError] = []
    loaded: list[pd.DataFrame] = []
    sources: list[dict[str, Any]] = []
    warnings: list[str] = []
    for order, wf in enumerate(files):
        try:
            one = load_waiting(wf.path, communes=communes, settings=settings,
                               source=wf.source)
        except InputError as exc:
            errors.append(exc)
            continue
        warnings += one.warnings
        if len(files) > 1 and wf.source is None and set(one.data["source"]) == {
                DEFAULT_SOURCE} and source_from_name(wf.path) is None:
            warnings.append(f"{wf.path} : pas de colonne source, aucune donnée (SOURCE=FICHIER) "
                            "ni dans le nom du fichier ; lignes marquées "
                            f"« {DEFAULT_SOURCE} »")
        loaded.append(one.data.assign(ordre_fichier=order))
        sources.append({"ordre_fichier": order, "fichier": wf.path.name,
                        "chemin": str(wf.path), "sha256": sha256_file(wf.path),
                        "source": " ; ".join(dict.fromkeys(one.data["source"]))
                        or (wf.source or ""),
                        "lignes": len(one.data)})
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InputError([p for e in errors for p in e.problems])
    rows = pd.concat(loaded, ignore_index=True)
    return WaitingReturns(rows, pd.DataFrame(sources), warnings)
