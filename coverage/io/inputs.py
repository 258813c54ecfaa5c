"""All the inputs of a run, loaded together; and the ``validate`` report.

:func:`load_inputs` loads communes, services, waiting lists and the road file's path for a
run. With no argument it loads the embedded **fictional** demo territory. :func:`validate_inputs`
checks the given files (or the demo), collects counts, remapped codes, warnings and errors
without raising, and writes nothing.

Which communes the services are checked against
    - communes given: that file (codes must be its communes; coordinates in its territory);
    - communes not given, fictional ``Z…`` services: the embedded demo communes;
    - communes not given, real services (validation only): the embedded national COG 2026
      table (codes must be current communes of France; services without coordinates cannot
      be placed, which ``validate`` reports as a warning). ``load_inputs`` refuses this case:
      a run needs commune polygons.
    - communes given but invalid: services are still checked against the national table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

import geopandas as gpd
import pandas as pd

from coverage.cog import normalise_codes
from coverage.demo import demo_paths
from coverage.errors import (
    CoverageError,
    InputError,
    MissingColumnError,
    Problem,
    UnsupportedFormatError,
)
from coverage.io.communes import load_communes
from coverage.io.services import load_services
from coverage.io.tables import Loaded, check_file, file_suffix, read_table
from coverage.io.waiting import WaitingReturns, WaitingSpecs, load_waiting_files, waiting_paths
from coverage.labels import FICTIONAL_LABEL, fr_int
from coverage.schemas import ROAD_FORMATS
from coverage.settings import Settings, is_fictional_code

__all__ = [
    "LAYER_INPUTS",
    "SECTION_TITLES",
    "Inputs",
    "ReadChoices",
    "RoadCheck",
    "Section",
    "ValidationReport",
    "check_roads",
    "load_inputs",
    "validate_inputs",
]

log = logging.getLogger(__name__)

#: Builds the road network of a file and returns its summary (one line or several, printed
#: indented); raises when the network cannot be read (:class:`~coverage.errors.InputError` or
#: another :class:`~coverage.errors.CoverageError`, or the reader's OSError/RuntimeError/
#: ValueError).
RoadCheck = Callable[[Path, Settings], str]
#: What :func:`_attempt` loads: a table file, or several waiting-list returns.
_LoadedT = TypeVar("_LoadedT", Loaded, WaitingReturns)

#: Inputs that may be GeoPackages read by layer (keys of :attr:`ReadChoices.layers`).
LAYER_INPUTS = ("communes", "services", "densite")
#: French title of each section of the ``validate`` report (by :attr:`Section.name`).
SECTION_TITLES: Mapping[str, str] = MappingProxyType({
    "communes": "communes", "services": "services", "waiting": "listes d'attente",
    "roads": "réseau routier", "densite": "grille de densité", "inputs": "entrées",
})


@dataclass(frozen=True)
class ReadChoices:
    """Explicit reading choices of the inputs: nothing is guessed silently.

    Attributes
    ----------
    layers
        Input name (``communes``, ``services``, ``densite``) → GeoPackage layer to read. A
        GeoPackage of several layers needs one unless it has a layer named like the input
        (``communes``, ``services``).
    density_levels
        The INSEE density grid's number of levels (4 or 7); None: from the density
        column's name (7 when it has a 7, e.g. ``dens7``, else 4).
    """

    layers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    density_levels: int | None = None

    def __post_init__(self) -> None:
        """Check the input names of ``layers``.

        Raises
        ------
        CoverageError
            A layer is given for an input that is not read by layer.
        """
        unknown = sorted(set(self.layers) - set(LAYER_INPUTS))
        if unknown:
            msg = (f"couche donnée pour {', '.join(unknown)} : --layer s'applique à "
                   + ", ".join(LAYER_INPUTS) + " (forme ENTREE=COUCHE)")
            raise CoverageError(msg)
        object.__setattr__(self, "layers", MappingProxyType(dict(self.layers)))


@dataclass
class Inputs:
    """The loaded inputs of a run.

    Attributes
    ----------
    communes
        GeoDataFrame (EPSG:4326) of :func:`~coverage.io.communes.load_communes`.
    services
        GeoDataFrame of points (EPSG:4326) of :func:`~coverage.io.services.load_services`.
    waiting
        Waiting lists / activity returns, every row of every file with its provenance
        (:func:`coverage.io.waiting.load_waiting_files`), or None.
    roads
        Road network file (OSM or GraphML), or None (proxy engine).
    fictif
        True for the fictional demo territory.
    warnings
        Warnings of every loader.
    paths
        Input name → file path (or "" when absent).
    remapped
        Commune codes mapped from older COG vintages, all files (column ``fichier`` added).
    """

    communes: gpd.GeoDataFrame
    services: gpd.GeoDataFrame
    waiting: pd.DataFrame | None
    roads: Path | None
    fictif: bool
    warnings: list[str] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)
    remapped: pd.DataFrame = field(default_factory=pd.DataFrame)
    waiting_files: pd.DataFrame | None = None


def check_roads(path: str | Path) -> Path:
    """Check that a road file exists, is not empty and has a supported extension.

    Raises
    ------
    InputError
        Missing or empty file, or an extension not in :data:`coverage.schemas.ROAD_FORMATS`.
    """
    p = check_file(path)
    if file_suffix(p) not in ROAD_FORMATS:
        raise UnsupportedFormatError(Problem(
            str(p), None, None, "un fichier de réseau routier : " + ", ".join(ROAD_FORMATS),
            file_suffix(p) or "aucune extension"))
    return p


def _services_look_fictional(path: Path, settings: Settings) -> bool:
    """Return True when every commune code of a services file is a fictional ``Z…`` code."""
    try:
        df = read_table(path, max_bytes=settings.max_input_bytes)
    except InputError:
        return False
    cols = {str(c).strip().lower(): c for c in df.columns}
    col = next((cols[k] for k in ("code_insee", "code_commune", "insee", "insee_com",
                                  "codgeo") if k in cols), None)
    if col is None:
        return False
    codes = normalise_codes(df[col]).dropna()
    return bool(len(codes)) and bool(codes.map(is_fictional_code).all())


def load_inputs(communes: str | Path | None = None, densite: str | Path | None = None,
                services: str | Path | None = None, waiting: WaitingSpecs | None = None,
                roads: str | Path | None = None,
                settings: Settings = Settings(), *,
                choices: ReadChoices = ReadChoices()) -> Inputs:
    """Load every input of a run; all None → the embedded fictional demo territory.

    Parameters
    ----------
    communes, densite, services, waiting, roads
        Input files (see the loaders). With ``communes`` None the demo communes are used,
        and the demo services, waiting lists and roads fill the inputs not given.
        With real communes, ``services`` is required and ``waiting``/``roads`` stay None
        when not given (the run then uses the proxy engine).
    settings
        Loader settings (size limit, service types).
    choices
        GeoPackage layers and the density grid's levels (:class:`ReadChoices`).

    Returns
    -------
    Inputs

    Raises
    ------
    InputError
        The first invalid file (one line per problem), or a missing services file.
    """
    demo = demo_paths() if communes is None else None
    paths: dict[str, str] = {}
    if demo is not None and services is not None and \
            not _services_look_fictional(Path(services), settings):
        raise MissingColumnError(Problem(
            str(services), None, None,
            "un fichier des communes (--communes) avec un fichier de services réels : sans "
            "lui, les communes sont celles du territoire de démonstration FICTIF"))
    if demo is not None:
        log.info("no communes file given: using the FICTIONAL demo territory")
    c = _load_communes(communes if demo is None else demo.communes, densite, settings,
                       choices)
    fictif = bool(c.data["fictif"].all())
    if services is None:
        if demo is None:
            raise MissingColumnError(Problem(
                "--services", None, None,
                "un fichier de services avec des communes réelles (les services de la "
                "démonstration sont fictifs)"))
        services = demo.services
    s = load_services(services, communes=c, settings=settings,
                      layer=choices.layers.get("services"))
    w_data = None
    w_loaded = None
    if waiting is None and demo is not None:
        waiting = demo.waiting
    if waiting is not None:
        w_loaded = load_waiting_files(waiting, communes=c.data, settings=settings)
        w_data = w_loaded.data
    if roads is None and demo is not None:
        roads = demo.roads
    road_path = check_roads(roads) if roads is not None else None
    for name, loaded in (("communes", c), ("services", s), ("waiting", w_loaded)):
        paths[name] = loaded.path if loaded is not None else ""
    paths["densite"] = str(densite) if densite is not None else ""
    paths["roads"] = str(road_path) if road_path is not None else ""
    warnings = c.warnings + s.warnings + (w_loaded.warnings if w_loaded else [])
    remapped = pd.concat([df.assign(fichier=name) for name, df in
                          (("communes", c.remapped), ("services", s.remapped)) if len(df)]
                         or [c.remapped.assign(fichier="")], ignore_index=True)
    return Inputs(c.data, s.data, w_data, road_path, fictif, warnings, paths, remapped,
                  waiting_files=w_loaded.files if w_loaded is not None else None)


# --- validation ------------------------------------------------------------------------------


@dataclass
class Section:
    """What ``validate`` found about one input."""

    name: str
    path: str
    summary: str = ""
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    remapped: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No error."""
        return not self.errors


@dataclass
class ValidationReport:
    """The report printed by ``zones-blanches validate``.

    Attributes
    ----------
    sections
        One per input checked (communes, services, waiting lists, roads).
    fictif
        The communes are the fictional demo territory.
    communes
        The valid communes (EPSG:4326), for checks of a higher layer (e.g. the share of
        communes on the road network); None when absent or invalid.
    """

    sections: list[Section] = field(default_factory=list)
    fictif: bool = False
    communes: gpd.GeoDataFrame | None = None

    @property
    def ok(self) -> bool:
        """True when no input has an error."""
        return all(s.ok for s in self.sections)

    @property
    def n_errors(self) -> int:
        """Number of error lines."""
        return sum(len(s.errors) for s in self.sections)

    def text(self) -> str:
        """Plain-text report: counts, remapped codes, warnings, errors, verdict."""
        lines = ["zones-blanches validate : contrôle des fichiers d'entrée"]
        if self.fictif:
            lines.append(f"  {FICTIONAL_LABEL}")
        for s in self.sections:
            status = "OK" if s.ok else "ERREURS"
            title = SECTION_TITLES.get(s.name, s.name)
            lines.append(f"\n[{title}] {s.path}  — {status}")
            lines += [f"  {line}" for line in s.summary.splitlines()]
            lines += [f"  note : {n}" for n in s.notes]
            if s.remapped is not None and len(s.remapped):
                lines.append(f"  codes remplacés ({fr_int(len(s.remapped))}) :")
                lines += [f"    ligne {r.row}, colonne « {r.column} » : {r.code_ancien} → "
                          f"{r.code_actuel}" for r in s.remapped.head(100).itertuples()]
                if len(s.remapped) > 100:
                    lines.append(f"    … et {fr_int(len(s.remapped) - 100)} autres")
            lines += [f"  avertissement : {w}" for w in s.warnings]
            lines += [f"  erreur : {e}" for e in s.errors]
        verdict = ("valide, aucune erreur" if self.ok else
                   f"INVALIDE : {fr_int(self.n_errors)} ligne(s) d'erreur ; rien n'a été "
                   "écrit")
        lines.append(f"\nRésultat : {verdict}")
        return "\n".join(lines)


def _load_communes(path: str | Path | None, densite: str | Path | None, settings: Settings,
                   choices: ReadChoices) -> Loaded:
    """Return :func:`load_communes` of ``path`` with the reading choices."""
    return load_communes(path, densite=densite, settings=settings,
                         layer=choices.layers.get("communes"),
                         density_layer=choices.layers.get("densite"),
                         density_levels=choices.density_levels)


def _attempt(section: Section, fn: Callable[[], _LoadedT]) -> _LoadedT | None:
    try:
        loaded = fn()
    except InputError as exc:
        section.errors += [str(p) for p in exc.problems] or [str(exc)]
        return None
    except CoverageError as exc:
        section.errors.append(f"{section.path} : {exc}")
        return None
    section.warnings += loaded.warnings
    section.remapped = loaded.remapped
    return loaded


def validate_inputs(communes: str | Path | None = None, densite: str | Path | None = None,
                    services: str | Path | None = None, waiting: WaitingSpecs | None = None,
                    roads: str | Path | None = None,
                    settings: Settings = Settings(), *,
                    road_check: RoadCheck | None = None,
                    choices: ReadChoices = ReadChoices()) -> ValidationReport:
    """Validate the given input files (all None → the embedded fictional demo).

    Every file given is loaded with its loader; errors are collected, not raised, and
    nothing is written. Services are checked against the communes given, else the demo
    communes (fictional services) or the national COG 2026 table (real services).

    Parameters
    ----------
    communes, densite, services, waiting, roads
        Input files, as for :func:`load_inputs`.
    settings
        Loader settings (size limit, service types).
    road_check
        Builds the road network of a road file (without cache) and returns a one-line
        summary, raising on an unreadable network; the routing layer provides it (the
        ``validate`` command passes it). None: only the road file's extension and size
        are checked here.
    choices
        GeoPackage layers and the density grid's levels (:class:`ReadChoices`).

    Returns
    -------
    ValidationReport
        ``.ok`` is False when any file has an error; ``.text()`` is the printed report.
    """
    report = ValidationReport()
    nothing = all(v is None for v in (communes, densite, services, waiting, roads))
    demo = demo_paths() if nothing else None
    if demo is not None:
        communes = demo.communes
        services = demo.services
        waiting = demo.waiting
        roads = demo.roads
    elif communes is None and services is not None and \
            _services_look_fictional(Path(services), settings):
        communes = demo_paths().communes

    com_data: gpd.GeoDataFrame | None = None
    if communes is not None:
        sec, com_data = _validate_communes(Path(communes), densite, settings, choices)
        report.fictif = com_data is not None and bool(com_data["fictif"].all())
        report.communes = com_data
        report.sections.append(sec)
    elif densite is not None:
        sec = Section("densite", str(densite),
                      errors=[f"{densite} : une grille de densité demande un fichier des "
                              "communes (--communes)"])
        report.sections.append(sec)
    if services is not None:
        report.sections.append(_validate_services(Path(services), com_data, settings,
                                                  choices.layers.get("services")))
    if waiting is not None:
        sec = Section("waiting", " ; ".join(map(str, waiting_paths(waiting))))
        wpath = waiting
        loaded = _attempt(sec, lambda: load_waiting_files(wpath, communes=com_data,
                                                          settings=settings))
        if loaded is not None:
            sec.summary = f"{fr_int(len(loaded.data))} ligne(s)" + (
                f" dans {len(loaded.files)} fichiers" if len(loaded.files) > 1 else "")
        report.sections.append(sec)
    if roads is not None:
        report.sections.append(_validate_roads(Path(roads), settings, road_check))
    if not report.sections:
        report.sections.append(Section("inputs", "", errors=["aucun fichier d'entrée donné"]))
    return report


def _validate_communes(path: Path, densite: str | Path | None, settings: Settings,
                       choices: ReadChoices) -> tuple[Section, gpd.GeoDataFrame | None]:
    """Load a communes file for ``validate``; its section and the communes (None if invalid)."""
    sec = Section("communes", str(path))
    loaded = _attempt(sec, lambda: _load_communes(path, densite, settings, choices))
    if densite is not None:
        sec.notes.append(f"grille de densité jointe : {densite}")
    if loaded is None:
        return sec, None
    data = loaded.data
    fictif = bool(data["fictif"].all())
    sec.summary = (f"{fr_int(len(data))} communes dans {data['code_dep'].nunique()} "
                   f"département(s), population {fr_int(int(data['population'].sum()))}, "
                   f"{fr_int(int(data['rural'].sum()))} rurale(s)"
                   + (" — territoire de démonstration FICTIF" if fictif else ""))
    return sec, data


def _validate_services(path: Path, communes: gpd.GeoDataFrame | None,
                       settings: Settings, layer: str | None = None) -> Section:
    """Load a services file for ``validate`` against ``communes`` (else the national table)."""
    sec = Section("services", str(path))
    if communes is None:
        sec.notes.append("contrôlé avec la table nationale du COG 2026 (pas de fichier des "
                         "communes valide) : codes seulement, sans placement")
    loaded = _attempt(sec, lambda: load_services(path, communes=communes, settings=settings,
                                                 layer=layer))
    if loaded is not None:
        d = loaded.data
        by_type = ", ".join(f"{t} {n}" for t, n in
                            d["type_service"].value_counts().sort_index().items())
        at_commune = d["precision"] == "commune"
        sec.summary = (f"{len(d)} services ({by_type}) ; "
                       f"{int((at_commune & d['lon'].notna()).sum())} placé(s) au point "
                       f"de leur commune, {int(d['lon'].isna().sum())} sans position")
    return sec


def _validate_roads(path: Path, settings: Settings, road_check: RoadCheck | None) -> Section:
    """Check a road file: extension and size here, then the network by ``road_check``."""
    sec = Section("roads", str(path))
    try:
        check_roads(path)
    except InputError as exc:
        sec.errors += [str(p) for p in exc.problems]
        return sec
    if road_check is None:
        sec.notes.append("réseau routier non construit : extension et taille contrôlées")
        return sec
    try:
        sec.summary = road_check(path, settings)
    except InputError as exc:
        sec.errors += [str(p) for p in exc.problems]
    except CoverageError as exc:
        sec.errors.append(f"{path} : {exc}")
    except (OSError, RuntimeError, ValueError) as exc:  # osmium/osmnx read errors
        sec.errors.append(f"{path} : attendu un fichier de réseau routier lisible, trouvé "
                          f"{type(exc).__name__} : {exc}")
    return sec
