"""``zones-blanches run``: read the arguments, call the batch, print the result.

The inputs come from the files given, from a ``fetch`` + ``prepare`` folder
(``--data-dir``) or, with none, from the embedded FICTIONAL demo territory. The outputs go to
``--out``, by default :data:`coverage.results.DEMO_RUN_DIR` for the demo (whatever the
working directory) and ``./sorties/<communes file>`` otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from coverage.batch import ISOCHRONES_GEOJSON_DIR, RunOptions, RunResult, run_batch
from coverage.batch.outdir import check_run_out
from coverage.batch.run import ROAD_NETWORK_NEEDED
from coverage.cli.arguments import read_choices_from_args
from coverage.errors import CoverageError
from coverage.io.inputs import Inputs, load_inputs
from coverage.io.official.prepare import prepared_paths
from coverage.io.waiting import waiting_paths
from coverage.labels import FICTIONAL_LABEL, RANGE_NOTE, fr_decimal, fr_int
from coverage.results import DEMO_RUN_DIR
from coverage.schemas import ACCES_COMMUNES
from coverage.settings import NO_SERVICE, Settings, settings_from_file, settings_with_overrides

__all__ = ["options_from_args", "run_from_cli", "run_settings", "summary_lines"]

log = logging.getLogger(__name__)

def _data_dir_inputs(data_dir: Path, depts: Sequence[str]) -> dict[str, Path | None]:
    """Return the input files of the ``fetch`` + ``prepare`` layout for one département.

    Layout (:func:`coverage.io.official.prepare.prepared_paths`):
    ``<data-dir>/<dept>/communes.gpkg``, ``services.csv`` (the user's own list) and
    ``routes.osm.pbf`` (optional: without it the proxy engine runs).
    """
    if len(depts) != 1:
        msg = "--data-dir takes exactly one --dept CODE (one prepared folder per département)"
        raise CoverageError(msg)
    paths = prepared_paths(data_dir, depts[0])
    if not paths["communes"].exists():
        msg = (f"{paths['communes']} not found: run `zones-blanches fetch --dept {depts[0]} "
               f"--data-dir {data_dir}` then `zones-blanches prepare --dept {depts[0]} "
               f"--data-dir {data_dir}` first")
        raise CoverageError(msg)
    if not paths["services"].exists():
        msg = (f"{paths['services']} not found: put your services list there (template: "
               "data/services/modele_services.csv) or give --services FILE")
        raise CoverageError(msg)
    return {"communes": paths["communes"], "services": paths["services"],
            "roads": paths["roads"] if paths["roads"].exists() else None}


def _default_out(inputs: Inputs, communes_path: Path | None) -> Path:
    """Return the default run folder: the demo's, or ``sorties/<communes file stem>``."""
    if inputs.fictif:
        return DEMO_RUN_DIR
    stem = communes_path.name.split(".")[0] if communes_path else "run"
    return Path("sorties") / stem


def _input_files(args: argparse.Namespace) -> dict[str, Path | None]:
    """Return the communes, services and roads files of the command.

    ``--data-dir`` fills those not given (its roads unless ``--engine proxy``).
    """
    files: dict[str, Path | None] = {"communes": args.communes, "services": args.services,
                                     "roads": args.roads}
    depts = list(args.dept) if args.dept else None
    if getattr(args, "data_dir", None) is not None:
        if not depts:
            msg = "--data-dir needs --dept CODE"
            raise CoverageError(msg)
        prepared = _data_dir_inputs(Path(args.data_dir), depts)
        files["communes"] = files["communes"] or prepared["communes"]
        files["services"] = files["services"] or prepared["services"]
        if files["roads"] is None and args.engine != "proxy" and \
                getattr(args, "temps", None) is None:
            files["roads"] = prepared["roads"]
    if args.engine == "road" and files["roads"] is None and files["communes"] is not None:
        raise CoverageError(ROAD_NETWORK_NEEDED)
    return files


def options_from_args(args: argparse.Namespace) -> RunOptions:
    """Return the run options of ``zones-blanches run`` (``--all`` runs every département)."""
    return RunOptions(
        depts=None if args.all or not args.dept else list(args.dept), types=args.types,
        thresholds=args.thresholds, engine=args.engine, scheduler=args.scheduler,
        workers=args.workers, use_cache=not args.no_cache,
        isochrones=not args.no_isochrones,
        isochrones_geojson=bool(getattr(args, "isochrones_geojson", False)),
        times=getattr(args, "temps", None), times_unit=getattr(args, "temps_unite", None),
        force_out=bool(getattr(args, "force", False)),
        force_network=bool(getattr(args, "force_network", False)),
        liaisons=getattr(args, "liaisons", None),
    )


def run_settings(args: argparse.Namespace) -> Settings:
    """Return the settings of ``run``: defaults, then ``--settings FILE``, then ``--set``."""
    file = getattr(args, "settings_file", None)
    base = settings_from_file(file) if file is not None else Settings()
    return settings_with_overrides(base, dict(getattr(args, "overrides", []) or []))


def _engine_line(result: RunResult) -> str:
    """Return the summary line of the engine, communes and partitions."""
    how = {"road": "OSM road graph",
           "matrice": _times_label(result.manifest)}.get(
        result.engine, "straight line × detour ÷ speed, an estimate")
    n_com = int(result.tables[ACCES_COMMUNES.name]["code_insee"].nunique())
    return (f"Engine: {result.engine} ({how}); "
            f"{n_com} communes in {len(result.manifest.get('depts', []))} département(s); "
            f"{len(result.computed)} partition(s) computed, {len(result.cached)} from "
            "the cache" + (" (outputs unchanged)" if result.reused else ""))


def _times_label(manifest: dict[str, object]) -> str:
    """Return « imported times <file>, SHA-256 <12 hex> (N pairs missing) » for a matrice run."""
    engine = manifest.get("engine")
    params = engine.get("parameters") if isinstance(engine, dict) else None
    params = params if isinstance(params, dict) else {}
    missing = params.get("paires_absentes")
    text = (f"imported times {params.get('fichier', '?')}, SHA-256 "
            f"{str(params.get('sha256', ''))[:12]}")
    if isinstance(missing, int) and missing:
        text += f"; {missing:,} commune × service pairs missing = unreachable".replace(",", " ")
    return text


def _white_zone_lines(result: RunResult) -> list[str]:
    """Return one line per shown threshold: white-zone inhabitants and communes by type."""
    france = result.tables.get("couverture_france")
    if france is None or not len(france):
        return []
    ths = sorted(set(france["seuil_minutes"]))
    show = sorted({max(ths)} | ({30.0} if 30.0 in ths else set()))
    lines = []
    for t in show:
        sub = france[france["seuil_minutes"] == t]
        parts = []
        for _, r in sub.iterrows():
            label = "none of the types" if r["type_service"] == NO_SERVICE else \
                str(r["type_service"])
            n = int(r["communes_zone_blanche"])
            parts.append(f"{label}: {int(r['population_zone_blanche']):,} inhabitants in "
                         f"{n} commune{'' if n == 1 else 's'}".replace(",", " ")
                         + _range_text(r))
        lines.append(f"White zones beyond {t:g} min — " + "; ".join(parts))
    return lines


def _range_text(row: pd.Series) -> str:
    """Return « (fourchette 1 200–1 900 hab., 10–14 communes) » for a proxy row, else ''."""
    lo, hi = row.get("population_zone_blanche_min"), row.get("population_zone_blanche_max")
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return ""
    c_lo, c_hi = row["communes_zone_blanche_min"], row["communes_zone_blanche_max"]
    return (f" (fourchette {fr_int(lo)}–{fr_int(hi)} hab., {fr_int(c_lo)}–{fr_int(c_hi)} "
            "communes)")


def _warning_lines(result: RunResult, shown: int = 8) -> list[str]:
    """Return the run's French warnings (empty offers), the first ``shown`` and a count."""
    notes = [str(w) for w in result.manifest.get("avertissements") or []]
    lines = [f"Avertissement : {w}" for w in notes[:shown]]
    if len(notes) > shown:
        lines.append(f"… et {len(notes) - shown} autre(s) avertissement(s) "
                     "(manifest.json, « avertissements »)")
    return lines


def summary_lines(result: RunResult) -> list[str]:
    """Return a short text summary of a run: engine, white-zone populations, outputs.

    Parameters
    ----------
    result
        What :func:`coverage.batch.run_batch` returned.
    """
    lines: list[str] = []
    if result.fictif:
        label = result.manifest.get("fictional_label") or FICTIONAL_LABEL
        lines.append(f"FICTIONAL DATA — {label}")
    lines.append(_engine_line(result))
    lines += _white_zone_lines(result)
    if result.engine == "proxy":
        low, high = result.manifest.get("parameters", {}).get("proxy_detour_bounds",
                                                               [None, None])
        if low is not None:
            lines.append("Fourchettes : " + RANGE_NOTE.format(
                low=fr_decimal(float(low), 2), high=fr_decimal(float(high), 2)))
    lines += _warning_lines(result)
    lines.append(f"Outputs: {result.out_dir}/ (tables/, manifest.json, communes.parquet, "
                 "services.parquet" + (", isochrones.gpkg" if result.manifest.get(
                     "isochrones_file") else "")
                 + (f", {ISOCHRONES_GEOJSON_DIR}/" if result.manifest.get(
                     "isochrones_geojson") else "") + ")")
    return lines


def run_from_cli(args: argparse.Namespace) -> int:
    """Run ``zones-blanches run``: load the inputs, run, print where the outputs are.

    Returns
    -------
    int
        The exit code (0). Errors are raised as :class:`CoverageError` (printed by the CLI
        without traceback, exit non-zero); nothing is written when the arguments are bad.
    """
    files = _input_files(args)
    if args.out:  # a bad --out is refused before any input is read
        check_run_out(args.out, force=bool(getattr(args, "force", False)), inputs=[
            *files.values(), args.densite, *waiting_paths(args.waiting),
            getattr(args, "temps", None)])
    settings = run_settings(args)
    inputs = load_inputs(communes=files["communes"], densite=args.densite,
                         services=files["services"], waiting=args.waiting,
                         roads=files["roads"], settings=settings,
                         choices=read_choices_from_args(args))
    for w in inputs.warnings:
        log.warning("%s", w)
    out_dir = args.out or _default_out(inputs, files["communes"])
    result = run_batch(inputs, out_dir=out_dir, options=options_from_args(args),
                       settings=settings)
    for line in summary_lines(result):
        print(line)
    sys.stdout.flush()
    return 0
