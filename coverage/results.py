"""Reading a run output folder back: :class:`RunOutputs`.

Layout of a run folder (written by :func:`coverage.batch.run`)::

    <out>/manifest.json            inputs (sha256), parameters, engine, versions, timings
    <out>/tables/<name>.csv        one per output contract (UTF-8, ``,``)
    <out>/tables/<name>.parquet
    <out>/tables/<name>.schema.json  Frictionless Table Schema
    <out>/communes.parquet         GeoParquet EPSG:4326, communes of the run
    <out>/services.parquet         GeoParquet EPSG:4326, service points
    <out>/isochrones.gpkg          isochrone bands (optional)
    <out>/.cache/                  per-partition cache

The manifest is written last: a folder without it is not a (finished) run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from coverage.errors import CoverageError

MANIFEST = "manifest.json"
TABLES_DIR = "tables"
COMMUNES_FILE = "communes.parquet"
SERVICES_FILE = "services.parquet"
ISOCHRONES_FILE = "isochrones.gpkg"
CACHE_DIR = ".cache"


class RunFolderError(CoverageError):
    """A folder is not a finished run output folder."""


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
        if path.exists():
            layers = set(gpd.list_layers(path)["name"])
            if layer in layers:
                result = gpd.read_file(path, layer=layer)
        self._iso_cache[layer] = result
        return result

    def isochrone_layers(self) -> list[str]:
        """Names of the layers of ``isochrones.gpkg`` (empty when absent)."""
        path = self.run_dir / ISOCHRONES_FILE
        if not path.exists():
            return []
        return [str(n) for n in gpd.list_layers(path)["name"]]

    @classmethod
    def load(cls, run_dir: str | Path) -> RunOutputs:
        """Read a run folder.

        Parameters
        ----------
        run_dir
            Folder written by :func:`coverage.batch.run`.

        Raises
        ------
        RunFolderError
            The folder does not exist or is not a finished run; the message names the
            missing file.
        """
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            msg = f"{run_dir} is not a run output folder: the folder does not exist"
            raise RunFolderError(msg)
        manifest_path = run_dir / MANIFEST
        required = [manifest_path, run_dir / TABLES_DIR, run_dir / COMMUNES_FILE,
                    run_dir / SERVICES_FILE]
        for p in required:
            if not p.exists():
                msg = (f"{run_dir} is not a finished run output folder: {p.name} is missing "
                       "(run `zones-blanches run --out` on it first)")
                raise RunFolderError(msg)
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            msg = f"{manifest_path}: expected a JSON run manifest ({exc})"
            raise RunFolderError(msg) from exc
        names = manifest.get("tables") or sorted(
            p.name[: -len(".parquet")] for p in (run_dir / TABLES_DIR).glob("*.parquet")
        )
        tables: dict[str, pd.DataFrame] = {}
        for name in names:
            path = run_dir / TABLES_DIR / f"{name}.parquet"
            if not path.exists():
                msg = (f"{run_dir} is not a finished run output folder: "
                       f"{TABLES_DIR}/{path.name} is missing")
                raise RunFolderError(msg)
            tables[name] = pd.read_parquet(path)
        communes = gpd.read_parquet(run_dir / COMMUNES_FILE)
        services = gpd.read_parquet(run_dir / SERVICES_FILE)
        return cls(run_dir=run_dir, manifest=manifest, tables=tables, communes=communes,
                   services=services)


#: Run folder that ``zones-blanches run`` writes for the embedded demo.
DEFAULT_RUN_DIR = Path("sorties") / "demo"


def load_finished_run(run_dir: str | Path | None) -> RunOutputs:
    """The finished run in ``run_dir`` (default: the demo's ``sorties/demo``), for commands.

    Raises
    ------
    coverage.errors.CoverageError
        When the folder holds no finished run (no manifest): the message says to run
        ``zones-blanches run`` first.
    """
    folder = Path(run_dir) if run_dir else DEFAULT_RUN_DIR
    if not (folder / MANIFEST).exists():
        msg = (f"no finished run in {folder} (no {MANIFEST}): run `zones-blanches run` "
               f"first{'' if run_dir else ' (it writes sorties/demo)'}")
        raise CoverageError(msg)
    return RunOutputs.load(folder)
