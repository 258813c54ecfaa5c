"""Imported travel times (``moteur = "matrice"``): a time table made by another router.

A user who has real road times — INSEE's Metric, OSRM, Valhalla, openrouteservice, or any
router — gives them as a table instead of a road file (``zones-blanches run --temps FILE``).
:class:`ImportedEngine` implements the :class:`~coverage.routing.base.Engine` contract by
looking the minutes up in that table; it computes nothing itself.

The table (CSV, XLSX or Parquet, read by :func:`coverage.io.tables.read_table`) comes in one
of two layouts:

* **long**: one row per pair, columns ``origine`` (commune code of departure),
  ``destination`` (a ``service_id`` of the services file, or a commune code), ``minutes``
  and optionally ``km``. Common names are accepted (:data:`TIMES_ALIASES`: ``idSrc``,
  ``idDst``, ``from``, ``to``, ``duree``, ``distance_km``, …). Seconds are read from a
  column named so (``secondes``, ``duration_s``), from a unit column (``unite``: ``s``,
  ``min``, ``h``) or with the ``unit`` option (``--temps-unite s``); ``distance_m`` is read
  in metres.
* **wide**: a matrix as OSRM's ``table`` service gives it, first column the origin codes,
  one column per destination (header = destination id), cells = times (``unit`` option;
  default minutes). An empty cell is a missing pair.

What the destinations are is a property of the table, decided once from the table itself
(:func:`table_destinations`), never from the services a caller passes (a subset of them
must find the same pairs): communes (commune × commune table) when at least half of the
distinct destinations are commune codes — one of the table's origins, or a code of the
official form (``15014``, ``2A004``) —, services (commune × service table, destinations
are ``service_id`` values) otherwise. A finished run records it (``destinations`` in the
manifest's engine parameters) and :func:`coverage.routing.engine_of_run` passes it back.
In a commune × commune table each service is mapped to its commune (``code_insee``) and a
missing diagonal (commune to itself) is read as 0 minutes; a destination of the other
kind is reported by :meth:`ImportedEngine.check` as unknown.

Direction: the minutes are those of the family's trip, origin (commune) → destination
(service). A pair of the run that the table does not hold is **unreachable (NaN)**, never
guessed; :meth:`ImportedEngine.check` counts those pairs, and the run reports them. Every
output names the file and its SHA-256 (:meth:`ImportedEngine.parameters`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage._validate import ProblemList, require_columns
from coverage.cog import normalise_codes
from coverage.errors import (
    CoverageError,
    DuplicateIdError,
    InputError,
    Problem,
    UnknownCodeError,
)
from coverage.files import sha256_file
from coverage.io.limits import TableLimits
from coverage.io.tables import is_blank, read_table, rename_aliases, to_number
from coverage.routing.base import empty_matrix, empty_nearest
from coverage.settings import Settings

__all__ = [
    "DESTINATION_KINDS",
    "ENGINE_NAME",
    "TIMES_ALIASES",
    "TIMES_MAX_CELLS",
    "TIMES_MAX_COLUMNS",
    "TIMES_MAX_ROWS",
    "UNITS",
    "ImportedCheck",
    "ImportedEngine",
    "TimesTable",
    "read_times",
    "table_destinations",
]

log = logging.getLogger(__name__)

#: Name of the engine (``moteur`` column, manifest).
ENGINE_NAME = "matrice"
#: What a table's destinations can be: service ids, or commune codes.
DESTINATION_KINDS: tuple[str, ...] = ("services", "communes")
#: Official form of a commune code (after :func:`coverage.cog.normalise_codes`).
_COMMUNE_CODE_RE = r"\d{5}|2[AB]\d{3}"

#: Contract column → accepted names (compared case- and accent-insensitively).
TIMES_ALIASES: Mapping[str, tuple[str, ...]] = {
    "origine": ("origin", "origine", "from", "source", "src", "idsrc", "id_src",
                "id_origine", "code_origine", "origin_id", "code_insee_origine", "insee_o",
                "commune", "code_insee"),
    "destination": ("dest", "to", "target", "dst", "iddst", "id_dst", "id_destination",
                    "code_destination", "destination_id", "code_insee_destination",
                    "insee_d", "service_id"),
    "minutes": ("minute", "min", "temps", "temps_min", "duree", "duree_min",
                "duration_min", "time_min", "travel_time", "travel_time_min", "tps",
                "temps_trajet"),
    "secondes": ("seconds", "second", "sec", "duration", "duration_s", "time_s",
                 "temps_s", "duree_s", "travel_time_s", "time"),
    "km": ("distance_km", "dist_km", "kilometres", "distance"),
    "metres": ("meters", "distance_m", "dist_m", "length"),
    "unite": ("unit", "units", "unite_temps"),
}
#: Units of the time column, and their factor to minutes.
UNITS: Mapping[str, float] = {
    "min": 1.0, "mn": 1.0, "minute": 1.0, "minutes": 1.0,
    "s": 1.0 / 60.0, "sec": 1.0 / 60.0, "seconde": 1.0 / 60.0, "secondes": 1.0 / 60.0,
    "second": 1.0 / 60.0, "seconds": 1.0 / 60.0,
    "h": 60.0, "heure": 60.0, "heures": 60.0, "hour": 60.0, "hours": 60.0,
}
_EXPECT_TIME = "un temps ≥ 0 (nombre)"
#: Size limits of a time table: a matrix has one column per destination (up to the
#: ~35,000 communes), a long table one row per pair.
TIMES_MAX_COLUMNS = 40_000
TIMES_MAX_ROWS = 50_000_000
TIMES_MAX_CELLS = 300_000_000
_EXPECT_UNIT = "une unité de temps (" + ", ".join(sorted(set(UNITS))) + ")"


def _raise_in_french(problems: ProblemList) -> None:
    """Raise the collected problems (same error classes) with one French line each."""
    try:
        problems.raise_if_any()
    except InputError as exc:
        raise type(exc)(exc.problems, "\n".join(p.french() for p in exc.problems)
                        ) from None


@dataclass(frozen=True)
class TimesTable:
    """A checked time table, long form (one entry per pair).

    Attributes
    ----------
    path
        The file.
    sha256
        SHA-256 of the file.
    origin, destination
        Codes / ids as strings (object arrays); commune codes normalised
        (:func:`coverage.cog.normalise_codes`).
    minutes
        float64 minutes (≥ 0).
    km
        float64 kilometres, NaN when the table has no distance.
    rows
        1-based data row of each entry in the file (messages).
    columns
        Contract name → column of the file (``origine``, ``destination``, ``minutes`` …);
        in the wide layout ``destination`` is ``(en-tête)``.
    unit
        Unit read (``min``, ``s``, ``h``, or ``colonne`` for a unit column).
    layout
        ``long`` or ``wide``.
    """

    path: Path
    sha256: str
    origin: np.ndarray
    destination: np.ndarray
    minutes: np.ndarray
    km: np.ndarray
    rows: np.ndarray
    columns: Mapping[str, str]
    unit: str
    layout: str

    def __len__(self) -> int:
        """Return the number of pairs."""
        return int(self.minutes.shape[0])


def _unit_factor(unit: str | None, file: str) -> tuple[str | None, float | None]:
    """Return the normalised unit option and its factor to minutes (None, None if unset)."""
    if unit is None:
        return None, None
    key = str(unit).strip().lower()
    if key not in UNITS:
        problem = Problem(file, None, None, _EXPECT_UNIT + " pour l'option d'unité", str(unit))
        raise InputError(problem, problem.french())
    return key, UNITS[key]


def _time_values(df: pd.DataFrame, problems: ProblemList, unit: str | None
                 ) -> tuple[np.ndarray, str, str]:
    """Return minutes, the unit read and the time column's contract name (long layout)."""
    column = "minutes" if "minutes" in df.columns else "secondes"
    raw = df[column]
    values = to_number(raw)
    bad = values.isna() | (values < 0)
    label = df.attrs.get("aliases", {}).get(column, column)
    problems.add_rows(bad.to_numpy(), label, _EXPECT_TIME, raw)
    opt_unit, opt_factor = _unit_factor(unit, problems.file)
    if opt_factor is not None:
        return values.to_numpy(np.float64) * opt_factor, str(opt_unit), column
    if "unite" in df.columns:
        units = df["unite"].astype("string").str.strip().str.lower()
        factors = units.map(lambda u: UNITS.get(str(u)) if pd.notna(u) else None)
        bad_u = factors.isna()
        problems.add_rows(bad_u.to_numpy(), df.attrs.get("aliases", {}).get("unite", "unite"),
                          _EXPECT_UNIT, df["unite"])
        per_row = pd.to_numeric(factors, errors="coerce").to_numpy(np.float64)
        return values.to_numpy(np.float64) * per_row, "colonne", column
    if column == "minutes":
        return values.to_numpy(np.float64), "min", column
    return values.to_numpy(np.float64) / 60.0, "s", column


def _km_values(df: pd.DataFrame) -> np.ndarray:
    """Return kilometres from ``km`` or ``metres`` (NaN when absent or unreadable)."""
    if "km" in df.columns:
        return to_number(df["km"]).to_numpy(np.float64)
    if "metres" in df.columns:
        return to_number(df["metres"]).to_numpy(np.float64) / 1000.0
    return np.full(len(df), np.nan)


def _codes(values: pd.Series) -> np.ndarray:
    """Return ids as stripped strings, commune-like codes normalised (``1001`` → ``01001``)."""
    text = values.astype("string").str.strip()
    norm = normalise_codes(text)
    looks_code = text.str.fullmatch(r"\d{4,5}(?:\.0+)?|2[ABab]\d{3}").fillna(False)
    out = text.where(~looks_code.astype(bool), norm)
    return out.astype(object).where(out.notna(), None).to_numpy(dtype=object)


def _repeated_pairs(out: pd.DataFrame, problems: ProblemList, column: str) -> None:
    """Add one problem per repeated origin → destination pair (the repeats, not the first)."""
    known = out["origine"].notna() & out["destination"].notna()
    key = (out["origine"].astype(str) + " → " + out["destination"].astype(str)).where(known)
    first_row = pd.Series(out["row"].to_numpy(), index=out.index).groupby(key).transform("min")
    repeat = (known & key.duplicated(keep="first")).to_numpy()
    found = [f"{k} (déjà ligne {int(f)})" if r else None
             for k, f, r in zip(key, first_row.fillna(0), repeat, strict=True)]
    problems.add_rows(repeat, column, "une paire origine → destination unique", found,
                      kind=DuplicateIdError)


def _long_table(df: pd.DataFrame, file: str, unit: str | None
                ) -> tuple[pd.DataFrame, dict[str, str], str]:
    """Check a long table; return origin, destination, minutes, km, row and the columns."""
    problems = ProblemList(file)
    aliases: dict[str, str] = df.attrs.get("aliases", {})
    for col in ("origine", "destination"):
        problems.add_rows(is_blank(df[col]).to_numpy(), aliases.get(col, col),
                          "un code de commune ou un identifiant de service", None)
    minutes, unit_read, time_col = _time_values(df, problems, unit)
    out = pd.DataFrame({"origine": _codes(df["origine"]), "destination": _codes(df["destination"]),
                        "minutes": minutes, "km": _km_values(df),
                        "row": np.arange(1, len(df) + 1)})
    _repeated_pairs(out, problems, f"{aliases.get('origine', 'origine')}/"
                                   f"{aliases.get('destination', 'destination')}")
    _raise_in_french(problems)
    columns = {c: aliases.get(c, c) for c in ("origine", "destination")}
    columns["minutes"] = aliases.get(time_col, time_col)
    return out, columns, unit_read


def _wide_table(df: pd.DataFrame, file: str, unit: str | None
                ) -> tuple[pd.DataFrame, dict[str, str], str]:
    """Melt a wide matrix (first column origins, one column per destination) and check it."""
    problems = ProblemList(file)
    first = df.columns[0]
    dests = [c for c in df.columns[1:]]
    _, factor = _unit_factor(unit, file)
    origins = _codes(df[first])
    problems.add_rows(pd.isna(pd.Series(origins)).to_numpy(), str(first),
                      "un code de commune", df[first])
    dest_ids = _codes(pd.Series([str(c) for c in dests], dtype=object))
    origin_rows = pd.Series(origins, dtype=object)
    problems.add_rows((origin_rows.notna() & origin_rows.duplicated()).to_numpy(), str(first),
                      "une origine par ligne (chaque origine une seule fois)", origin_rows,
                      kind=DuplicateIdError)
    parts = []
    for j, col in enumerate(dests):
        raw = df[col]
        values = to_number(raw)
        blank = is_blank(raw)
        bad = ~blank & (values.isna() | (values < 0))
        problems.add_rows(bad.to_numpy(), str(col), _EXPECT_TIME, raw)
        keep = ~blank.to_numpy() & ~bad.to_numpy()
        parts.append(pd.DataFrame({"origine": origins[keep], "destination": dest_ids[j],
                                   "minutes": values.to_numpy(np.float64)[keep]
                                   * (factor if factor is not None else 1.0),
                                   "km": np.nan, "row": np.flatnonzero(keep) + 1}))
    if len(set(dest_ids)) != len(dest_ids):
        problems.add(Problem(file, None, None, "des en-têtes de destination distincts",
                             "une destination répétée"))
    _raise_in_french(problems)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["origine", "destination", "minutes", "km", "row"])
    unit_read = str(unit).strip().lower() if unit is not None else "min"
    return out, {"origine": str(first), "destination": "(en-tête)", "minutes": "(cellules)"}, \
        unit_read


def read_times(path: str | Path, *, unit: str | None = None,
               settings: Settings = Settings()) -> TimesTable:
    """Read and check a time table (long or wide layout, see the module docstring).

    Parameters
    ----------
    path
        CSV, XLSX or Parquet file.
    unit
        Unit of the times: ``min`` (default), ``s`` or ``h``; overrides a unit column and
        the unit implied by the column's name.
    settings
        ``max_input_bytes``.

    Returns
    -------
    TimesTable
        Minutes (float64, ≥ 0) per pair, with the file's SHA-256.

    Raises
    ------
    InputError
        One line per problem, naming file, row, column and what was expected: a missing
        code, a time that is not a number or is negative, an unknown unit, a pair given
        twice (:class:`~coverage.errors.DuplicateIdError`).
    """
    p = Path(path)
    file = p.name
    limits = TableLimits(max_bytes=settings.max_input_bytes, max_columns=TIMES_MAX_COLUMNS,
                         max_rows=TIMES_MAX_ROWS, max_cells=TIMES_MAX_CELLS)
    df = read_table(p, max_bytes=settings.max_input_bytes, limits=limits)
    df = pd.DataFrame(df.drop(columns="geometry", errors="ignore"))
    renamed, _notes = rename_aliases(df, TIMES_ALIASES, file=file)
    has_time = "minutes" in renamed.columns or "secondes" in renamed.columns
    if "destination" in renamed.columns and has_time and "origine" in renamed.columns:
        table, columns, unit_read = _long_table(renamed, file, unit)
        layout = "long"
    elif "destination" not in renamed.columns and not has_time and len(df.columns) >= 2:
        table, columns, unit_read = _wide_table(df, file, unit)
        layout = "wide"
    else:
        missing = [c for c in ("origine", "destination", "minutes")
                   if c not in renamed.columns and not (c == "minutes" and has_time)]
        problem = Problem(file, None, ", ".join(missing),
                          "les colonnes origine, destination et minutes (ou secondes), ou "
                          "une matrice (1re colonne : origines, une colonne par destination)",
                          ", ".join(str(c) for c in df.columns[:8]))
        raise InputError(problem, problem.french())
    return TimesTable(
        path=p, sha256=sha256_file(p),
        origin=table["origine"].to_numpy(dtype=object),
        destination=table["destination"].to_numpy(dtype=object),
        minutes=table["minutes"].to_numpy(np.float64), km=table["km"].to_numpy(np.float64),
        rows=table["row"].to_numpy(np.int64), columns=columns, unit=unit_read, layout=layout)


def table_destinations(table: TimesTable) -> str:
    """Return what the table's destinations are, from the table alone.

    Parameters
    ----------
    table
        A checked time table (:func:`read_times`).

    Returns
    -------
    str
        ``communes`` when at least half of the distinct destinations are commune codes
        (one of the table's origins, or of the official form ``15014`` / ``2A004``),
        else ``services`` (``service_id`` values). An empty table: ``services``.
    """
    dests = pd.Series(pd.unique(pd.Series(table.destination, dtype=object).dropna()),
                      dtype=object).astype(str)
    if dests.empty:
        return "services"
    origins = set(pd.Series(table.origin, dtype=object).dropna().astype(str))
    commune = dests.isin(origins) | dests.str.fullmatch(_COMMUNE_CODE_RE)
    return "communes" if 2 * int(commune.sum()) >= len(dests) else "services"


@dataclass(frozen=True)
class ImportedCheck:
    """How a time table fits a run's communes and services.

    Attributes
    ----------
    destinations
        ``services`` (commune × service table) or ``communes`` (commune × commune).
    pairs_run
        Commune × service pairs of the run.
    pairs_missing
        Those the table does not hold (unreachable, NaN).
    diagonal_filled
        Commune × commune table: communes hosting a service whose own pair (commune to
        itself) was absent and read as 0 minutes.
    """

    destinations: str
    pairs_run: int
    pairs_missing: int
    diagonal_filled: int

    def record(self) -> dict[str, Any]:
        """Return the JSON-ready figures for the manifest (French keys)."""
        return {"destinations": self.destinations, "paires_du_run": self.pairs_run,
                "paires_absentes": self.pairs_missing,
                "diagonale_completee": self.diagonal_filled}

    def warning(self, file: str) -> str | None:
        """Return the French warning on missing pairs, or None when none is missing."""
        if self.pairs_missing == 0:
            return None
        share = f"{100.0 * self.pairs_missing / max(self.pairs_run, 1):.1f}".replace(".", ",")
        n = f"{self.pairs_missing:,}".replace(",", " ")
        total = f"{self.pairs_run:,}".replace(",", " ")
        return (f"tableau de temps {file} : {n} paires commune × service sur {total} "
                f"({share} %) absentes du tableau, comptées injoignables (NaN)")


class ImportedEngine:
    """Travel times looked up in an imported table (``moteur = "matrice"``).

    Parameters
    ----------
    table
        The checked table (:func:`read_times`).
    settings
        Run settings (kept for the contract; the table decides every minute).
    destinations
        ``services`` or ``communes``: what the table's destinations are, when known (a
        finished run's record); None: decided from the table (:func:`table_destinations`).

    Attributes
    ----------
    destinations
        ``services`` (commune × service table) or ``communes`` (commune × commune), fixed
        for the engine's life: the services passed to :meth:`nearest` or :meth:`matrix`
        never change it.

    Raises
    ------
    CoverageError
        ``destinations`` is neither ``services`` nor ``communes``.
    """

    name = ENGINE_NAME

    def __init__(self, table: TimesTable, settings: Settings = Settings(),
                 destinations: str | None = None) -> None:
        if destinations is not None and destinations not in DESTINATION_KINDS:
            msg = (f"tableau de temps {table.path.name} : destinations « {destinations} » "
                   f"inconnues, attendu {' ou '.join(DESTINATION_KINDS)}")
            raise CoverageError(msg)
        self.table = table
        self.settings = settings
        self.destinations = destinations or table_destinations(table)
        self._frame = pd.DataFrame({"origine": table.origin, "destination": table.destination,
                                    "minutes": table.minutes, "km": table.km})

    @classmethod
    def from_file(cls, path: str | Path, settings: Settings = Settings(), *,
                  unit: str | None = None, destinations: str | None = None
                  ) -> ImportedEngine:
        """Read ``path`` (:func:`read_times`) and return its engine.

        ``destinations``: ``services`` or ``communes`` when known (a run's record), None
        to decide from the table (:func:`table_destinations`).
        """
        return cls(read_times(path, unit=unit, settings=settings), settings, destinations)

    def parameters(self) -> dict[str, Any]:
        """Return the JSON-ready parameters: the file, its SHA-256, its layout and unit."""
        return {
            "moteur": self.name,
            "methode": "temps importés d'un tableau (Metric, OSRM, Valhalla, "
                       "openrouteservice, …) ; paires absentes = injoignables (NaN)",
            "fichier": self.table.path.name,
            "chemin": str(self.table.path),
            "sha256": self.table.sha256,
            "paires": len(self.table),
            "disposition": self.table.layout,
            "unite": self.table.unit,
            "colonnes": dict(self.table.columns),
        }

    def _unknown(self, values: np.ndarray, known: set[str], column: str, expected: str,
                 problems: ProblemList) -> None:
        bad = np.array([str(v) not in known for v in values], dtype=bool)
        rows = self.table.rows[bad]
        for r, v in zip(rows[:20], values[bad][:20], strict=True):
            problems.add(Problem(problems.file, int(r), column, expected, str(v)),
                         UnknownCodeError)
        if bad.sum() > 20:
            problems.add(Problem(problems.file, None, column, expected,
                                 f"{int(bad.sum()) - 20} autres lignes de ce genre"),
                         UnknownCodeError)

    def check(self, communes: pd.DataFrame, services: pd.DataFrame) -> ImportedCheck:
        """Check the table against the run's inputs; count the missing pairs.

        Parameters
        ----------
        communes
            Every commune of the inputs (``code_insee``).
        services
            The run's services (``service_id``, ``type_service``; ``code_insee`` for a
            commune × commune table).

        Returns
        -------
        ImportedCheck

        Raises
        ------
        UnknownCodeError
            An origin that is not a commune of the communes file, or a destination that
            is neither a service id nor a commune code (one line per row, up to 20).
        """
        problems = ProblemList(self.table.path.name)
        codes = set(communes["code_insee"].astype(str))
        cols = self.table.columns
        self._unknown(self.table.origin, codes, cols["origine"],
                      "un code de commune du fichier des communes", problems)
        kind = self.destinations
        if kind == "communes":
            self._unknown(self.table.destination, codes, cols["destination"],
                          "un code de commune du fichier des communes (tableau commune × "
                          "commune)", problems)
        else:
            self._unknown(self.table.destination, set(services["service_id"].astype(str)),
                          cols["destination"], "un identifiant de service (service_id) du "
                          "fichier des services (tableau commune × service)", problems)
        _raise_in_french(problems)
        pairs = self._service_pairs(communes, services)
        n_run = len(communes) * len(services)
        found = int(pairs["minutes"].notna().sum()) if len(pairs) else 0
        return ImportedCheck(kind, n_run, n_run - found, self._diagonal_count(services, kind))

    def _diagonal_count(self, services: pd.DataFrame, kind: str) -> int:
        if kind != "communes" or "code_insee" not in services.columns:
            return 0
        own = set(zip(self._frame["origine"], self._frame["destination"], strict=True))
        hosts = set(services["code_insee"].dropna().astype(str))
        return sum((c, c) not in own for c in hosts)

    # -- pairs -----------------------------------------------------------------------------
    def _service_pairs(self, communes: pd.DataFrame, services: pd.DataFrame) -> pd.DataFrame:
        """Return the table's pairs of these communes and services.

        Columns ``code_insee``, ``service_id``, ``type_service``, ``minutes``, ``km``; a
        missing diagonal of a commune × commune table is added at 0 minutes.
        """
        codes = pd.Index(communes["code_insee"].astype(str).unique())
        svc = pd.DataFrame({"service_id": services["service_id"].astype(str).to_numpy(),
                            "type_service": (services["type_service"].astype(str).to_numpy()
                                             if "type_service" in services.columns
                                             else "")})
        frame = self._frame[self._frame["origine"].isin(codes)]
        if self.destinations == "services":
            svc["destination"] = svc["service_id"]
        else:
            if "code_insee" not in services.columns:
                msg = (f"tableau de temps {self.table.path.name} : ses destinations ne sont pas "
                       "les identifiants de ces services (service_id), et les services n'ont "
                       "pas de code_insee pour les rattacher à leur commune ; un site absent "
                       "du tableau ne peut pas être chronométré")
                raise CoverageError(msg)
            svc["destination"] = services["code_insee"].astype("string").to_numpy(dtype=object)
            diag = svc.dropna(subset=["destination"])
            diag = diag[diag["destination"].isin(codes)]
            extra = pd.DataFrame({"origine": diag["destination"].unique(),
                                  "destination": diag["destination"].unique(),
                                  "minutes": 0.0, "km": 0.0})
            have = pd.MultiIndex.from_frame(frame[["origine", "destination"]])
            extra = extra[~pd.MultiIndex.from_frame(extra[["origine", "destination"]]
                                                    ).isin(have)]
            frame = pd.concat([frame, extra], ignore_index=True)
        merged = frame.merge(svc, on="destination", how="inner")
        return pd.DataFrame({"code_insee": merged["origine"].astype(object),
                             "service_id": merged["service_id"].astype(object),
                             "type_service": merged["type_service"].astype(object),
                             "minutes": merged["minutes"].astype(np.float64),
                             "km": merged["km"].astype(np.float64)})

    def nearest(self, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
                service_types: tuple[str, ...]) -> pd.DataFrame:
        """Return the nearest service of each type for every commune, from the table.

        Parameters
        ----------
        communes
            ``code_insee``.
        services
            ``service_id``, ``type_service`` (and ``code_insee`` for a commune × commune
            table).
        service_types
            Types to compute.

        Returns
        -------
        pandas.DataFrame
            One row per commune × type: minutes (NaN when the table holds no pair of that
            commune with a service of the type), ``service_id`` (ties: the first in the
            services' order), ``distance_km`` from the table (NaN without distances),
            ``moteur = "matrice"``, ``acces_hors_reseau = False``.
        """
        require_columns(communes, ("code_insee",), file="communes")
        require_columns(services, ("service_id", "type_service"), file="services")
        if not service_types or len(communes) == 0:
            return empty_nearest()
        pairs = self._service_pairs(communes, services)
        order = {sid: i for i, sid in enumerate(services["service_id"].astype(str))}
        pairs["_order"] = pairs["service_id"].map(order)
        best = (pairs.sort_values(["code_insee", "type_service", "minutes", "_order"],
                                  kind="mergesort")
                .drop_duplicates(["code_insee", "type_service"]))
        codes = communes["code_insee"].astype(str).to_numpy(dtype=object)
        grid = pd.DataFrame({"code_insee": np.repeat(codes, len(service_types)),
                             "type_service": np.tile(np.array(service_types, dtype=object),
                                                     codes.shape[0])})
        out = grid.merge(best[["code_insee", "type_service", "minutes", "service_id", "km"]],
                         on=["code_insee", "type_service"], how="left")
        out = out.sort_values("type_service", kind="mergesort", key=lambda s: s.map(
            {t: i for i, t in enumerate(service_types)})).reset_index(drop=True)
        return pd.DataFrame({
            "code_insee": out["code_insee"].astype(object),
            "type_service": out["type_service"].astype(object),
            "minutes": out["minutes"].astype(np.float64),
            "service_id": out["service_id"].astype(object).where(out["service_id"].notna(),
                                                                 None),
            "distance_km": out["km"].astype(np.float64),
            "moteur": pd.Series([self.name] * len(out), dtype=object),
            "acces_hors_reseau": np.zeros(len(out), dtype=bool)})

    def matrix(self, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
               cutoff_min: float) -> pd.DataFrame:
        """Return the service × commune minutes within ``cutoff_min``, from the table.

        Returns
        -------
        pandas.DataFrame
            ``service_id``, ``code_insee``, ``minutes`` (float32), pairs held by the table
            within the cut-off only.
        """
        require_columns(communes, ("code_insee",), file="communes")
        require_columns(services, ("service_id",), file="services")
        if len(communes) == 0 or len(services) == 0:
            return empty_matrix()
        pairs = self._service_pairs(communes, services)
        pairs = pairs[pairs["minutes"] <= cutoff_min]
        return pd.DataFrame({"service_id": pairs["service_id"].astype(object).to_numpy(),
                             "code_insee": pairs["code_insee"].astype(object).to_numpy(),
                             "minutes": pairs["minutes"].to_numpy(np.float32)})

