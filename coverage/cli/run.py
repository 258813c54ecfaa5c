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
import pyarrow.parquet as pq

from coverage.batch import ISOCHRONES_GEOJSON_DIR, RunOptions, RunResult, run_batch
from coverage.batch.outdir import EXPORTS_DIR, check_run_out
from coverage.batch.run import ROAD_NETWORK_NEEDED
from coverage.cli.arguments import read_choices_from_args
from coverage.errors import CoverageError
from coverage.export.provenance import clean_stale_exports
from coverage.io.inputs import Inputs, load_inputs
from coverage.io.official.prepare import prepared_paths
from coverage.io.waiting import waiting_paths
from coverage.labels import (
    FICTIONAL_LABEL,
    RANGE_NOTE,
    REASON_UNREACHABLE,
    density_label,
    engine_label,
    fr_decimal,
    fr_int,
    fr_minutes,
    fr_percent,
    type_label,
)
from coverage.results import COMMUNES_FILE, DEMO_RUN_DIR
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
        msg = ("--data-dir demande exactement un --dept CODE (un dossier préparé par "
               "département)")
        raise CoverageError(msg)
    paths = prepared_paths(data_dir, depts[0])
    if not paths["communes"].exists():
        msg = (f"{paths['communes']} introuvable : lancez d'abord `zones-blanches fetch "
               f"--dept {depts[0]} --data-dir {data_dir}` puis `zones-blanches prepare "
               f"--dept {depts[0]} --data-dir {data_dir}`")
        raise CoverageError(msg)
    if not paths["services"].exists():
        msg = (f"{paths['services']} introuvable : placez-y votre liste de services (modèle : "
               "data/services/modele_services.csv) ou donnez --services FICHIER")
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
            msg = "--data-dir demande --dept CODE"
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


def _plural(n: int, word: str) -> str:
    """Return « 1 commune », « 0 commune », « 14 communes » (French: plural from 2)."""
    return f"{fr_int(n)} {word}{'s' if n >= 2 else ''}"


def _depts_text(result: RunResult) -> str:
    """Return « 2 départements : ZA Hautes-Brumes (fictif), ZB … » (names when known)."""
    depts = [str(d) for d in result.manifest.get("depts", [])]
    names = _departement_names(Path(result.out_dir) / COMMUNES_FILE)
    listed = ", ".join(f"{d} {names[d]}" if d in names else d for d in depts[:12])
    more = f" et {len(depts) - 12} autres" if len(depts) > 12 else ""
    return f"{_plural(len(depts), 'département')}" + (f" : {listed}{more}" if listed else "")


def _departement_names(communes_file: Path) -> dict[str, str]:
    """Return département code → name from a run's communes file (empty when it has none)."""
    if not communes_file.exists() or not {"code_dep", "nom_dep"} <= set(
            pq.read_schema(communes_file).names):
        return {}
    pairs = pd.read_parquet(communes_file, columns=["code_dep", "nom_dep"]).dropna()
    pairs = pairs.drop_duplicates("code_dep")
    return dict(zip(pairs["code_dep"].astype(str), pairs["nom_dep"].astype(str), strict=False))


def _engine_line(result: RunResult) -> str:
    """Return the summary line of the engine, communes and partitions."""
    how = _times_label(result.manifest) if result.engine == "matrice" else \
        engine_label(result.engine, short=True)
    n_com = int(result.tables[ACCES_COMMUNES.name]["code_insee"].nunique())
    n_full = len(result.computed) - len(result.incremental)
    updated = (f", {fr_int(len(result.incremental))} mise(s) à jour "
               f"({_plural(result.recomputed_communes, 'commune')} recalculée(s))"
               if result.incremental else "")
    return (f"Moteur : {result.engine} ({how}) ; {_plural(n_com, 'commune')} dans "
            f"{_depts_text(result)} ; {fr_int(n_full)} partition(s) calculée(s) en entier"
            f"{updated}, {fr_int(len(result.cached))} reprise(s) du cache"
            + (" (sorties inchangées)" if result.reused else ""))


def _times_label(manifest: dict[str, object]) -> str:
    """Return « temps importés <file>, SHA-256 <12 hex> (N paires absentes) » (matrice run)."""
    engine = manifest.get("engine")
    params = engine.get("parameters") if isinstance(engine, dict) else None
    params = params if isinstance(params, dict) else {}
    missing = params.get("paires_absentes")
    text = (f"temps importés {params.get('fichier', '?')}, SHA-256 "
            f"{str(params.get('sha256', ''))[:12]}")
    if isinstance(missing, int) and missing:
        text += (f" ; {fr_int(missing)} paire(s) commune × service absente(s) du tableau = "
                 f"{REASON_UNREACHABLE}")
    return text


def _white_zone_lines(result: RunResult) -> list[str]:
    """Return one line per threshold of the run: white-zone inhabitants and communes by type."""
    france = result.tables.get("couverture_france")
    if france is None or not len(france):
        return []
    lines = []
    for t in sorted(set(france["seuil_minutes"])):
        sub = france[france["seuil_minutes"] == t]
        parts = []
        for _, r in sub.iterrows():
            n = int(r["communes_zone_blanche"])
            parts.append(f"{type_label(str(r['type_service']))} : "
                         f"{_plural(int(r['population_zone_blanche']), 'habitant')} dans "
                         f"{_plural(n, 'commune')}" + _range_text(r)
                         + f", couverture {fr_percent(float(r['taux_couverture']))}")
        lines.append(f"Zones blanches au-delà de {fr_minutes(t)} — " + " ; ".join(parts))
    return lines


def _density_line(result: RunResult) -> str | None:
    """Return the white-zone population by INSEE density level, all types combined.

    At 30 minutes when the run has it, else at its smallest threshold; None without the
    table.
    """
    dens = result.tables.get("couverture_densite")
    if dens is None or not len(dens):
        return None
    ths = sorted(set(dens["seuil_minutes"]))
    t = 30.0 if 30.0 in ths else ths[0]
    sub = dens[(dens["seuil_minutes"] == t) & (dens["type_service"] == NO_SERVICE)]
    if not len(sub):
        return None
    parts = [f"{density_label(int(r['densite']))} : "
             f"{_plural(int(r['population_zone_blanche']), 'habitant')}"
             for _, r in sub.sort_values("densite").iterrows()]
    return (f"Zones blanches au-delà de {fr_minutes(t)} par niveau de densité INSEE, vue "
            "combinée des services — " + " ; ".join(parts))


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
    """Return the French summary of a run: engine, white zones at every threshold, outputs.

    Parameters
    ----------
    result
        What :func:`coverage.batch.run_batch` returned.
    """
    lines: list[str] = []
    if result.fictif:
        label = result.manifest.get("fictional_label") or FICTIONAL_LABEL
        lines.append(f"DONNÉES FICTIVES — {label}")
    lines.append(_engine_line(result))
    lines += _white_zone_lines(result)
    density = _density_line(result)
    if density is not None:
        lines.append(density)
    if result.engine == "proxy":
        low, high = result.manifest.get("parameters", {}).get("proxy_detour_bounds",
                                                               [None, None])
        if low is not None:
            lines.append("Fourchettes : " + RANGE_NOTE.format(
                low=fr_decimal(float(low), 2), high=fr_decimal(float(high), 2)))
    lines += _warning_lines(result)
    lines.append(f"Sorties : {result.out_dir}/ (tables/, manifest.json, communes.parquet, "
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
    stale = clean_stale_exports(out_dir)  # exports of the run this one replaced
    if stale:
        print(f"{len(stale)} fichiers d'exports du calcul précédent retirés de "
              f"{Path(out_dir) / EXPORTS_DIR} (périmés) : relancez `zones-blanches export`.")
    sys.stdout.flush()
    return 0
