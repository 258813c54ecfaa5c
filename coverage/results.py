"""Reading a run output folder back: :class:`RunOutputs`.

Layout of a run folder (written by :func:`coverage.batch.run_batch`)::

    <out>/manifest.json            inputs (sha256), parameters, engine, versions, timings
    <out>/tables/<name>.csv        one per output contract (UTF-8, ``,``)
    <out>/tables/<name>.parquet
    <out>/tables/<name>.schema.json  Frictionless Table Schema
    <out>/communes.parquet         GeoParquet EPSG:4326, communes of the run
    <out>/services.parquet         GeoParquet EPSG:4326, service points
    <out>/isochrones.gpkg          isochrone bands (optional)
    <out>/.cache/                  per-partition cache, the run's lock and staging folder

The manifest is written last: a folder without it is not a (finished) run. It records the
SHA-256 and size of every output (entry ``outputs``, relative path → ``sha256``, ``bytes``):
:meth:`RunOutputs.load` checks them and refuses a folder whose files do not match (a run
interrupted while it replaced the files, or files edited by hand), naming the fix: run
``zones-blanches run`` again. Manifests of older versions, without ``outputs``, are read
without this check.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from coverage.cog import normalise_dept
from coverage.errors import CoverageError
from coverage.files import sha256_file
from coverage.labels import FICTIONAL_TITLE
from coverage.settings import REPO_ROOT, SERVICE_TYPES, Settings

__all__ = [
    "CACHE_DIR",
    "COMMUNES_FILE",
    "DEMO_RUN_DIR",
    "ISOCHRONES_FILE",
    "MANIFEST",
    "OUTPUTS_KEY",
    "RUN_FORMAT",
    "SERVICES_FILE",
    "SWITCHING",
    "TABLES_DIR",
    "RunFolderError",
    "RunOutputs",
    "available_departements",
    "check_departement",
    "check_outputs",
    "departement_names",
    "load_finished_run",
    "output_digests",
    "rerun_hint",
    "run_roads_path",
    "run_service_types",
    "run_settings",
    "run_thresholds",
    "source_line",
    "sources",
]

MANIFEST = "manifest.json"
TABLES_DIR = "tables"
COMMUNES_FILE = "communes.parquet"
SERVICES_FILE = "services.parquet"
ISOCHRONES_FILE = "isochrones.gpkg"
CACHE_DIR = ".cache"
#: Manifest entry recording every output: relative path → ``sha256`` and ``bytes``.
OUTPUTS_KEY = "outputs"
#: ``format`` of a run's manifest.
RUN_FORMAT = "zones-blanches-run"
#: ``state`` of the marker that stands for the manifest while a run replaces the files
#: (:mod:`coverage.batch.folder`): a folder showing it is being written, or was interrupted.
SWITCHING = "remplacement_en_cours"

log = logging.getLogger(__name__)


class RunFolderError(CoverageError):
    """A folder is not a finished run output folder."""


#: In-process memo of file digests: (path, size, mtime ns, inode) → SHA-256.
_DIGEST_MEMO: dict[tuple[str, int, int, int], str] = {}


def _digest(path: Path) -> str:
    """Return the SHA-256 of a file, memoised on its path, size, mtime and inode."""
    st = path.stat()
    stamp = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    digest = _DIGEST_MEMO.get(stamp)
    if digest is None:
        digest = sha256_file(path)
        _DIGEST_MEMO[stamp] = digest
    return digest


def output_digests(folder: str | Path, relpaths: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Return the manifest's ``outputs`` entry: SHA-256 and size of each file of a run.

    Parameters
    ----------
    folder
        The folder holding the files (the run folder, or the staging folder of a run).
    relpaths
        Paths relative to ``folder``, POSIX style (``tables/acces_communes.csv``).
    """
    root = Path(folder)
    out: dict[str, dict[str, Any]] = {}
    for rel in sorted(set(relpaths)):
        path = root / rel
        out[rel] = {"sha256": _digest(path), "bytes": path.stat().st_size}
    return out


def rerun_hint(run_dir: str | Path) -> str:
    """Return the French sentence naming the fix of a broken run folder."""
    return (f"relancez `zones-blanches run --out {run_dir}` avec les mêmes fichiers "
            "d'entrée pour le réécrire en entier")


def check_outputs(run_dir: str | Path, manifest: Mapping[str, Any]) -> None:
    """Check that a run folder's files are those its manifest recorded (SHA-256 and size).

    Parameters
    ----------
    run_dir
        The run folder.
    manifest
        Its parsed ``manifest.json``. Without an ``outputs`` entry (older versions) nothing
        is checked.

    Raises
    ------
    RunFolderError
        A recorded file is missing or differs (the folder mixes two runs, or a file was
        edited); the message names the file and the fix (:func:`rerun_hint`).
    """
    root = Path(run_dir)
    if manifest.get("state") == SWITCHING:
        msg = (f"{root} n'est pas un calcul cohérent : un calcul remplaçait ses fichiers et a "
               f"été interrompu (ou est en cours) ; {rerun_hint(root)}")
        raise RunFolderError(msg)
    recorded = manifest.get(OUTPUTS_KEY)
    if not isinstance(recorded, Mapping):
        return
    for rel, info in sorted(recorded.items()):
        path = root / rel
        expected = info.get("sha256") if isinstance(info, Mapping) else None
        if not path.is_file():
            problem = f"{rel} est absent"
        elif (isinstance(info, Mapping) and info.get("bytes") is not None
              and path.stat().st_size != info.get("bytes")) or _digest(path) != expected:
            problem = (f"{rel} ne correspond pas au manifeste (empreinte SHA-256 "
                       "différente : fichiers de deux calculs mêlés, ou modifiés à la main)")
        else:
            continue
        msg = f"{root} n'est pas un calcul cohérent : {problem} ; {rerun_hint(root)}"
        raise RunFolderError(msg)


@dataclass
class RunOutputs:
    """The outputs of one run, read from its folder.

    Attributes
    ----------
    run_dir
        The run folder.
    manifest
        Parsed ``manifest.json``.
    tables
        Output tables by contract name (``acces_communes``, ``zones_blanches``,
        ``couverture_*``, …), read from Parquet.
    communes
        Communes of the run with polygons, EPSG:4326.
    services
        Service points, EPSG:4326.
    """

    run_dir: Path
    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    communes: gpd.GeoDataFrame
    services: gpd.GeoDataFrame
    _iso_cache: dict[str, gpd.GeoDataFrame | None] = field(default_factory=dict, repr=False)

    @property
    def engine(self) -> str:
        """Name of the travel-time engine of the run: ``road`` or ``proxy``."""
        return str(self.manifest.get("engine", {}).get("name", ""))

    @property
    def fictif(self) -> bool:
        """True when the run is on the fictional demo territory."""
        return bool(self.manifest.get("fictif", False))

    @property
    def fictional_label(self) -> str | None:
        """The FICTIONAL label text of a demo run, else None."""
        label = self.manifest.get("fictional_label")
        return str(label) if label else None

    @property
    def thresholds(self) -> list[float]:
        """Thresholds of the run, minutes."""
        return [float(t) for t in self.manifest.get("thresholds_min", [])]

    @property
    def depts(self) -> list[str]:
        """Département codes of the run."""
        return [str(d) for d in self.manifest.get("depts", [])]

    def isochrones(self, layer: str) -> gpd.GeoDataFrame | None:
        """One layer of ``isochrones.gpkg``, or None when the file or the layer is absent.

        Parameters
        ----------
        layer
            Layer name, as written by :mod:`coverage.isochrones`.
        """
        if layer in self._iso_cache:
            return self._iso_cache[layer]
        path = self.run_dir / ISOCHRONES_FILE
        result: gpd.GeoDataFrame | None = None
        if self._isochrones_recorded():
            layers = set(gpd.list_layers(path)["name"])
            if layer in layers:
                result = gpd.read_file(path, layer=layer)
        self._iso_cache[layer] = result
        return result

    def isochrone_layers(self) -> list[str]:
        """Names of the layers of ``isochrones.gpkg`` (empty when absent)."""
        if not self._isochrones_recorded():
            return []
        return [str(n) for n in gpd.list_layers(self.run_dir / ISOCHRONES_FILE)["name"]]

    def _isochrones_recorded(self) -> bool:
        """Return True when ``isochrones.gpkg`` exists and belongs to this run.

        A manifest with ``outputs`` must list it: a GeoPackage left by an earlier run is
        not this run's.
        """
        if not (self.run_dir / ISOCHRONES_FILE).exists():
            return False
        recorded = self.manifest.get(OUTPUTS_KEY)
        return not isinstance(recorded, Mapping) or ISOCHRONES_FILE in recorded

    @classmethod
    def load(cls, run_dir: str | Path) -> RunOutputs:
        """Read a run folder.

        Parameters
        ----------
        run_dir
            Folder written by :func:`coverage.batch.run_batch`.

        Raises
        ------
        RunFolderError
            The folder does not exist or is not a finished run; the message names the
            missing file.
        """
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            msg = f"{run_dir} n'est pas un dossier de sortie de calcul : le dossier n'existe pas"
            raise RunFolderError(msg)
        manifest_path = run_dir / MANIFEST
        required = [manifest_path, run_dir / TABLES_DIR, run_dir / COMMUNES_FILE,
                    run_dir / SERVICES_FILE]
        for p in required:
            if not p.exists():
                msg = (f"{run_dir} n'est pas le dossier d'un calcul terminé : {p.name} manque "
                       f"({rerun_hint(run_dir)})")
                raise RunFolderError(msg)
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            msg = f"{manifest_path} : attendu un manifeste de calcul JSON ({exc})"
            raise RunFolderError(msg) from exc
        if not isinstance(manifest, dict):
            msg = f"{manifest_path} : attendu un manifeste de calcul JSON (un objet)"
            raise RunFolderError(msg)
        check_outputs(run_dir, manifest)
        names = manifest.get("tables") or sorted(
            p.name[: -len(".parquet")] for p in (run_dir / TABLES_DIR).glob("*.parquet")
        )
        tables: dict[str, pd.DataFrame] = {}
        for name in names:
            path = run_dir / TABLES_DIR / f"{name}.parquet"
            if not path.exists():
                msg = (f"{run_dir} n'est pas le dossier d'un calcul terminé : "
                       f"{TABLES_DIR}/{path.name} manque ({rerun_hint(run_dir)})")
                raise RunFolderError(msg)
            tables[name] = pd.read_parquet(path)
        communes = gpd.read_parquet(run_dir / COMMUNES_FILE)
        services = gpd.read_parquet(run_dir / SERVICES_FILE)
        return cls(run_dir=run_dir, manifest=manifest, tables=tables, communes=communes,
                   services=services)


#: Run folder of the embedded demo, the same whatever the working directory: ``zones-blanches
#: run`` (demo inputs), ``export``, ``sites`` and the app all use it.
DEMO_RUN_DIR = REPO_ROOT / "sorties" / "demo"


def load_finished_run(run_dir: str | Path | None) -> RunOutputs:
    """Return the finished run in ``run_dir`` (default: the demo's run, :data:`DEMO_RUN_DIR`).

    Raises
    ------
    coverage.errors.CoverageError
        When the folder holds no finished run (no manifest): the message says to run
        ``zones-blanches run`` first.
    """
    folder = Path(run_dir) if run_dir else DEMO_RUN_DIR
    if not (folder / MANIFEST).exists():
        hint = "" if run_dir else f" (il écrit la démo dans {folder})"
        msg = (f"aucun calcul terminé dans {folder} (pas de {MANIFEST}) : lancez d'abord "
               f"`zones-blanches run`{hint}")
        if (folder / CACHE_DIR).is_dir():  # a run started there and did not finish
            msg = (f"aucun calcul terminé dans {folder} (pas de {MANIFEST} : un calcul y a "
                   f"été interrompu) ; {rerun_hint(folder)}")
        raise RunFolderError(msg)
    return RunOutputs.load(folder)


def available_departements(run: RunOutputs) -> list[str]:
    """Département codes present in a run (its communes), sorted."""
    codes: set[str] = set()
    if "code_dep" in run.communes.columns:
        codes.update(run.communes["code_dep"].dropna().astype(str))
    acces = run.tables.get("acces_communes")
    if acces is not None and "code_dep" in acces.columns:
        codes.update(acces["code_dep"].dropna().astype(str))
    return sorted(codes)


def departement_names(run: RunOutputs) -> dict[str, str]:
    """Return département code → name, from the run's communes (``nom_dep``) when present."""
    c = run.communes
    if "nom_dep" not in c:
        return {}
    pairs = c[["code_dep", "nom_dep"]].dropna().drop_duplicates("code_dep")
    return dict(zip(pairs["code_dep"].astype(str), pairs["nom_dep"].astype(str), strict=False))


def run_service_types(run: RunOutputs) -> list[str]:
    """Return the service types of a run's ``acces_communes``, in the order of the settings.

    Types unknown to the settings come last, sorted; the combined view is not added.
    """
    acc = run.tables.get("acces_communes")
    types = [] if acc is None else [str(t) for t in acc["type_service"].unique()]
    return [t for t in SERVICE_TYPES if t in types] + sorted(
        t for t in types if t not in SERVICE_TYPES
    )


def check_departement(run: RunOutputs, dept: str) -> str:
    """Return ``dept`` as a str when the run has it, else raise :class:`CoverageError`.

    The message lists the départements available in the run.
    """
    dept = normalise_dept(dept)
    available = available_departements(run)
    if dept not in available:
        where = getattr(run, "run_dir", None)
        of_run = f"du calcul {where}" if where is not None else "du calcul"
        msg = (f"département « {dept} » absent {of_run} ; départements disponibles : "
               f"{', '.join(available) if available else '(aucun)'}")
        raise CoverageError(msg)
    return dept


def run_thresholds(run: RunOutputs, settings: Settings = Settings()) -> list[float]:
    """Thresholds of a run, minutes: the manifest's, else the coverage table's, else settings."""
    thresholds = [float(t) for t in run.manifest.get("thresholds_min", [])]
    if not thresholds:
        cov = run.tables.get("couverture_departements")
        if cov is not None and len(cov):
            thresholds = [float(t) for t in cov["seuil_minutes"].dropna().unique()]
    if not thresholds:
        thresholds = [float(t) for t in settings.thresholds_min]
    return sorted(set(thresholds))


#: Words of a communes file name that tell its polygons come from IGN Admin Express (the
#: reference territories of ../shared/data are cut from it) or from Etalab's contours.
_IGN_HINTS = ("admin", "ign", "cog2018", "communes_cog", "massif_central", "six_departements")


_ETALAB_HINTS = ("etalab", "contours")


def sources(run: RunOutputs) -> list[tuple[str, str]]:
    """Return the data sources of a run with their licence, as (source, licence) pairs.

    Worked out from the run's input files (manifest ``inputs``: the communes file name
    tells IGN Admin Express from Etalab contours, otherwise the file is named), its engine
    (OpenStreetMap for ``road``) and the services' ``source`` column.
    """
    if run.fictif:
        label = run.manifest.get("fictional_label") or FICTIONAL_TITLE
        out = [(f"Territoire, réseau routier, services et listes d'attente fictifs générés par "
                f"zones-blanches (coverage.demo) : {label}", "aucune donnée réelle")]
        return out
    inputs = run.manifest.get("inputs") or {}

    def path_of(key: str) -> str:
        value = inputs.get(key) if isinstance(inputs, Mapping) else None
        if isinstance(value, Mapping):
            value = value.get("path")
        return str(value or "")

    out = []
    communes = path_of("communes")
    low = communes.lower()
    if any(k in low for k in _IGN_HINTS):
        out.append(("IGN – Admin Express (contours des communes)", "Licence Ouverte"))
    elif any(k in low for k in _ETALAB_HINTS):
        out.append(("Etalab – contours administratifs des communes", "Licence Ouverte"))
    elif communes:
        out.append((f"Contours des communes : {Path(communes).name}", "selon la source"))
    out.append(("Etalab – découpage administratif (COG, EPCI, populations)",
                "Licence Ouverte (données), MIT (code)"))
    out.append(("INSEE – grille communale de densité, populations légales", "Licence Ouverte"))
    if run.engine == "road":
        roads = path_of("roads")
        extra = f" : {Path(roads).name}" if roads else ""
        out.append((f"© les contributeurs d'OpenStreetMap (réseau routier{extra})", "ODbL"))
    services = path_of("services")
    srcs: list[str] = []
    if "source" in run.services.columns:
        srcs = sorted(set(run.services["source"].dropna().astype(str)) - {""})
    if services or srcs:
        shown = ", ".join(srcs[:3]) + (f" (+{len(srcs) - 3})" if len(srcs) > 3 else "")
        label = Path(services).name if services else ""
        text = " — ".join(t for t in (label, shown) if t)
        out.append((f"Services : {text}", "selon la source"))
    waiting = path_of("waiting")
    if waiting:
        out.append((f"Listes d'attente : {Path(waiting).name}", "selon la source"))
    return out


def source_line(run: RunOutputs) -> str:
    """One-line attribution for maps: « Source : … », with the engine named."""
    if run.fictif:
        src = "territoire fictif généré par zones-blanches (aucune donnée réelle)"
    else:
        names = []
        for name, _lic in sources(run):
            if name.startswith("© les contributeurs d'OpenStreetMap"):
                names.append("© les contributeurs d'OpenStreetMap (ODbL)")
            elif name.startswith("Services : "):
                # the file, not the URLs of every service (they are in the method sheet)
                names.append(name.split(" — ")[0])
            elif not name.startswith("Listes d'attente"):
                names.append(name.split(" (")[0])
        src = " / ".join(names)
    engine = run.engine or "?"
    params = (run.manifest.get("engine") or {}).get("parameters") or {}
    if engine == "matrice" and isinstance(params, dict):  # the imported table, by name and digest
        engine += (f" (tableau {params.get('fichier', '?')}, SHA-256 "
                   f"{str(params.get('sha256', ''))[:12]})")
    return f"Source : {src}. Temps d'accès : moteur {engine}."


def run_settings(run: RunOutputs) -> Settings:
    """Return the settings of a run from its manifest (snapping, access speed, proxy detour).

    Parameters missing from the manifest keep their defaults.
    """
    raw = run.manifest.get("parameters") or {}
    kwargs: dict[str, Any] = {}
    if isinstance(raw, dict):
        for name in ("snap_max_m", "access_speed_kmh", "proxy_detour_factor",
                     "proxy_speed_near_kmh", "proxy_speed_far_kmh", "proxy_speed_break_km",
                     "land_mass_gap_m"):
            if isinstance(raw.get(name), (int, float)):
                kwargs[name] = float(raw[name])
        access = raw.get("proxy_access_min_by_density")
        if isinstance(access, dict) and access:
            kwargs["proxy_access_min_by_density"] = {int(k): float(v)
                                                     for k, v in access.items()}
        bounds = raw.get("proxy_detour_bounds")
        if isinstance(bounds, list) and len(bounds) == 2:
            kwargs["proxy_detour_bounds"] = tuple(float(b) for b in bounds)
    return replace(Settings(), **kwargs)


def run_roads_path(run: RunOutputs) -> Path | None:
    """Return the run's road file, if found.

    The file is named by the manifest's ``inputs.roads.path`` or the engine's ``reseau``.

    A relative path is looked up from the working folder, the repository and the run folder.
    """
    names: list[Any] = []
    inputs = run.manifest.get("inputs") or {}
    if isinstance(inputs, dict):
        roads = inputs.get("roads")
        names.append(roads.get("path") if isinstance(roads, dict) else roads)
    engine = run.manifest.get("engine") or {}
    if isinstance(engine, dict) and isinstance(engine.get("parameters"), dict):
        names.append(engine["parameters"].get("reseau"))
    for name in names:
        if not name:
            continue
        p = Path(str(name))
        for q in (p, REPO_ROOT / p, run.run_dir / p):
            if q.is_file():
                return q.resolve()
    return None
