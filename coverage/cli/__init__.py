"""``zones-blanches`` command line: read arguments, call the library, print the result.

The parser and the error handling live here; each subcommand's reading of its arguments and
printing of its result lives in a module of this package (``run``, ``export``, ``sites``,
``official``), loaded lazily for start-up speed. Only this package prints or knows argparse.

Every subcommand is a thin wrapper. Errors raised on purpose (:class:`CoverageError`) are
printed as plain lines and the command exits non-zero with no traceback; ``--debug`` shows
the traceback of unexpected errors.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from coverage._version import __project__, __version__
from coverage.cli.arguments import (
    add_input_args,
    add_read_choice_args,
    add_settings_arg,
    csv_list,
    settings_from_args,
    thresholds,
)
from coverage.errors import CoverageError, InputError, os_error_sentence
from coverage.settings import Settings

if TYPE_CHECKING:
    from coverage.io.inputs import ValidationReport
    from coverage.routing.network import RoadNetwork

__all__ = [
    "EXIT_ENVIRONMENT",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "build_parser",
    "main",
    "settings_from_args",
]

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERRUPTED = 130

#: The object ``add_subparsers`` returns.
_Subparsers = argparse._SubParsersAction  # argparse has no public name for it

log = logging.getLogger(__name__)


def _workers(text: str) -> int:
    """Parse ``--workers``: a whole number ≥ 1.

    Raises
    ------
    argparse.ArgumentTypeError
        Not a whole number, or below 1 (the message gives the accepted values).
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = (f"--workers {text} refusé : un nombre entier de processus ≥ 1 est attendu "
               "(1 calcule dans ce processus)")
        raise argparse.ArgumentTypeError(msg)
    return value


def _add_validate(sub: _Subparsers) -> None:
    """Add ``validate``."""
    p = sub.add_parser("validate", help="validate input files (default: the embedded demo)")
    add_input_args(p)
    add_read_choice_args(p)
    add_settings_arg(p)
    p.set_defaults(handler=_cmd_validate)


def _add_run(sub: _Subparsers) -> None:
    """Add ``run``."""
    p = sub.add_parser("run", help="compute access times, white zones and coverage tables")
    add_input_args(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dept", nargs="+", metavar="CODE", help="département codes to run")
    g.add_argument("--all", action="store_true", help="every département of the communes file")
    p.add_argument("--types", type=csv_list, help="service types, comma-separated")
    p.add_argument("--thresholds", type=thresholds, help="minutes, e.g. 20,30,45")
    p.add_argument("--engine", choices=("road", "proxy", "matrice"),
                   help="road (needs --roads), proxy, or matrice (needs --temps); default: "
                        "matrice with --temps, road when roads are given, else proxy")
    p.add_argument("--out", type=Path, help="output folder (default: sorties/demo for the "
                   "demo, else ./sorties/<data set>)")
    p.add_argument("--data-dir", type=Path,
                   help="folder filled by 'fetch' + 'prepare' (used with --dept)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the partitions on an existing Dask distributed cluster")
    p.add_argument("--workers", type=_workers,
                   help="local worker processes, ≥ 1 (default: CPU count)")
    p.add_argument("--no-cache", action="store_true", help="recompute every partition")
    p.add_argument("--no-isochrones", action="store_true", help="skip the isochrone bands")
    p.add_argument("--isochrones-geojson", action="store_true",
                   help="also write each isochrone layer as GeoJSON (EPSG:4326) in "
                        "<out>/isochrones_geojson/")
    add_settings_arg(p)
    _add_times_args(p)
    _add_liaisons_arg(p)
    _add_force_arg(p, "write into a non-empty folder that is not a run folder (files the "
                      "run did not write are never modified or removed)")
    add_read_choice_args(p)
    p.add_argument("--force-reseau", dest="force_network", action="store_true",
                   help="run the road engine even when most communes are off its network "
                        "(by default such a run is refused)")
    p.set_defaults(handler=_cmd_run)


def _add_liaisons_arg(p: argparse.ArgumentParser) -> None:
    """Add ``--liaisons FILE``: the ferry links of the proxy engine."""
    p.add_argument("--liaisons", type=Path, metavar="FILE",
                   help="ferry links of the proxy engine (CSV/XLSX: port_1, port_2 = commune "
                        "INSEE codes, minutes = crossing time, both ways); default: none, "
                        "islands reach only their own services")


def _add_force_arg(p: argparse.ArgumentParser, what: str) -> None:
    """Add ``--force``: accept an output the safety checks of ``--out`` would refuse."""
    p.add_argument("--force", action="store_true", help=what)


def _add_times_args(p: argparse.ArgumentParser) -> None:
    """Add ``--temps FILE``, ``--temps-unite`` and ``--settings FILE`` to ``run``."""
    p.add_argument("--temps", type=Path, metavar="FILE",
                   help="imported travel times (CSV/XLSX/Parquet: origine, destination, "
                        "minutes[, km]; or a matrix) used as the 'matrice' engine")
    p.add_argument("--temps-unite", choices=("min", "s", "h"),
                   help="unit of the times of --temps (default: from the column names, "
                        "else minutes)")
    p.add_argument("--settings", type=Path, metavar="FILE", dest="settings_file",
                   help="JSON settings file (e.g. written by 'calibrer'); --set applies "
                        "on top")


def _add_export(sub: _Subparsers) -> None:
    """Add ``export``."""
    p = sub.add_parser("export", help="export a département's tables and maps from a run")
    p.add_argument("--dept", required=True, metavar="CODE")
    p.add_argument("--run", type=Path, help="run output folder (default: the demo run)")
    p.add_argument("--formats", type=csv_list, default=("csv", "xlsx", "gpkg", "png"),
                   help="csv,csv_fr,xlsx,gpkg,parquet,png,png_attente (or all)")
    p.add_argument("--out", type=Path, help="export folder (default: <run>/exports/<dept>)")
    p.add_argument("--internal", action="store_true",
                   help="do not mask small counts (statistical secrecy applies by default)")
    p.set_defaults(handler=_cmd_export)


def _add_sites(sub: _Subparsers) -> None:
    """Add ``sites``."""
    p = sub.add_parser("sites", help="where would k new sites cover the most families "
                       "(greedy maximal covering, from a run)")
    p.add_argument("--dept", required=True, metavar="CODE", help="département of the sites")
    p.add_argument("--type", required=True, metavar="TYPE",
                   help="service type of the new sites (mediation_familiale, espace_rencontre)")
    p.add_argument("--seuil", type=float, default=30.0, help="threshold, minutes (default 30)")
    p.add_argument("-k", type=int, default=1, help="number of new sites (default 1)")
    p.add_argument("--run", type=Path, help="run output folder (default: the demo run)")
    p.add_argument("--out", type=Path, help="write the table as CSV (atomic)")
    p.add_argument("--dept-only", action="store_true",
                   help="count only the département's families (default: also the run's "
                   "communes across the border)")
    _add_force_arg(p, "replace an existing --out file not written by 'sites'")
    p.set_defaults(handler=_cmd_sites)


def _add_app(sub: _Subparsers) -> None:
    """Add ``app``."""
    p = sub.add_parser("app", help="start the Streamlit app on 127.0.0.1")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--run", type=Path, help="run output folder to open")
    p.set_defaults(handler=_cmd_app)


def _add_official(sub: _Subparsers) -> None:
    """Add ``fetch`` and ``prepare``."""
    p = sub.add_parser("fetch", help="download official open data for a département")
    p.add_argument("--dept", nargs="+", required=True, metavar="CODE")
    p.add_argument("--year", type=int)
    p.add_argument("--data-dir", type=Path, default=Path("donnees"))
    p.add_argument("--mirror", metavar="BASE_URL",
                   help="internal mirror that keeps the official paths")
    p.add_argument("--no-osm", action="store_true", help="skip the OSM road extract")
    p.add_argument("--generalisation", choices=("5m", "50m", "100m", "1000m"),
                   help="Etalab contours generalisation (default: 100m)")
    p.add_argument("--retries", type=int, help="retries per file (default: 4)")
    p.add_argument("--timeout", type=float, help="socket timeout, seconds (default: 60)")
    p.add_argument("--no-neighbours", action="store_true",
                   help="skip the OSM extracts of the neighbouring départements (roads then "
                        "stop at the département's border)")
    p.set_defaults(handler=_cmd_fetch)

    p = sub.add_parser("prepare", help="convert fetched official files to the input contracts")
    p.add_argument("--dept", nargs="+", required=True, metavar="CODE")
    p.add_argument("--data-dir", type=Path, default=Path("donnees"))
    p.set_defaults(handler=_cmd_prepare)


def _add_suivi_parser(sub: _Subparsers) -> None:
    """Add ``suivi`` (the shared follow-up of waiting lists)."""
    p = sub.add_parser("suivi", help="write the shared waiting-list follow-up "
                       "(suivi_listes_attente.xlsx/.csv) of a run from return files")
    p.add_argument("--run", type=Path, default=None,
                   help="finished run folder (default: the demo run)")
    p.add_argument("--waiting", nargs="+", required=True, metavar="FILE|FOLDER|SOURCE=FILE",
                   help="waiting-list return files (CSV/XLSX) or folders of them")
    p.add_argument("--seuil", type=float, default=None, metavar="MINUTES",
                   help="threshold of the white-zone population (default: 30 if the run "
                   "has it, else its smallest)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder of the follow-up files (default: the run folder)")
    add_settings_arg(p)
    p.set_defaults(handler=_cmd_suivi)


def _cmd_suivi(args: argparse.Namespace) -> int:
    from coverage.cli.suivi import suivi_from_cli

    return suivi_from_cli(args)


def _add_demo(sub: _Subparsers) -> None:
    """Add ``demo``."""
    p = sub.add_parser("demo", help="regenerate the fictional demo territory (deterministic)")
    p.add_argument("--out", type=Path, help="folder (default: the embedded data/demo)")
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(handler=_cmd_demo)


def _add_calibrer(sub: _Subparsers) -> None:
    """Add ``calibrer``."""
    p = sub.add_parser("calibrer", help="fit the proxy's parameters to real road times "
                       "(road file or time table) and write a settings file")
    p.add_argument("--communes", type=Path, required=True,
                   help="commune points: code_insee, lon, lat, densite (1-4) or --densite")
    p.add_argument("--densite", type=Path, help="INSEE density grid joined on the codes")
    p.add_argument("--roads", type=Path, help="road network timing every pair of communes")
    p.add_argument("--temps", type=Path, help="real times instead of a road file (long "
                   "table or matrix, like run --temps)")
    p.add_argument("--temps-unite", choices=("min", "s", "h"),
                   help="unit of the times of --temps (default: from the columns, else min)")
    p.add_argument("--out", type=Path, help="settings file to write (JSON, for run --settings)")
    add_settings_arg(p)
    p.set_defaults(handler=_cmd_calibrer)


def _cmd_calibrer(args: argparse.Namespace) -> int:
    from coverage.cli.calibrer import calibrer_from_cli

    return calibrer_from_cli(args)


def _add_rapport_parser(sub: _Subparsers) -> None:
    """Add ``rapport`` (the département report, DOCX and HTML)."""
    p = sub.add_parser("rapport", help="écrire le rapport d'un département (DOCX et page "
                       "HTML autonome) à partir d'un calcul")
    p.add_argument("--dept", required=True, metavar="CODE", help="code du département")
    p.add_argument("--run", type=Path,
                   help="dossier du calcul (défaut : le calcul de la démo)")
    p.add_argument("--seuil", type=float, default=None, metavar="MINUTES",
                   help="seuil des cartes et des listes (défaut : 30 si le calcul l'a)")
    p.add_argument("--out", type=Path,
                   help="dossier du rapport (défaut : <calcul>/exports/<département>)")
    p.set_defaults(handler=_cmd_rapport)


def _cmd_rapport(args: argparse.Namespace) -> int:
    from coverage.cli.rapport import rapport_from_cli

    return rapport_from_cli(args)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``zones-blanches``."""
    parser = argparse.ArgumentParser(
        prog="zones-blanches",
        description="White zones of family mediation services and espaces de rencontre.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log lines")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_validate, _add_run, _add_export, _add_sites, _add_app, _add_official,
                _add_demo, _add_suivi_parser, _add_calibrer, _add_rapport_parser):
        add(sub)
    return parser


def _cmd_validate(args: argparse.Namespace) -> int:
    from coverage.cli.arguments import read_choices_from_args
    from coverage.io.inputs import validate_inputs
    from coverage.routing.network import load_network, network_summary

    built: list[RoadNetwork] = []

    def road_check(path: Path, settings: Settings) -> str:
        net = load_network(path, settings=settings, use_cache=False)
        built.append(net)
        return "\n".join(network_summary(net).lines())

    settings = settings_from_args(args)
    report = validate_inputs(
        communes=args.communes, densite=args.densite, services=args.services,
        waiting=args.waiting, roads=args.roads, settings=settings,
        road_check=road_check, choices=read_choices_from_args(args),
    )
    if built:
        _validate_snapping(report, built[0], settings)
    print(report.text())
    return EXIT_OK if report.ok else EXIT_ERROR


def _validate_snapping(report: ValidationReport, network: RoadNetwork,
                       settings: Settings) -> None:
    """Add to the roads section the share of communes on the network (an error when low)."""
    from coverage.errors import NetworkCoverageError
    from coverage.routing.road import RoadEngine, require_snap_coverage

    section = next((s for s in report.sections if s.name == "roads"), None)
    if section is None or report.communes is None:
        return
    coverage = RoadEngine(network, settings).snap_coverage(report.communes)
    section.summary += "\n" + coverage.line()
    try:
        require_snap_coverage(coverage)
    except NetworkCoverageError as exc:
        section.errors.append(str(exc))


def _cmd_run(args: argparse.Namespace) -> int:
    from coverage.cli.run import run_from_cli

    return run_from_cli(args)


def _cmd_export(args: argparse.Namespace) -> int:
    from coverage.cli.export import export_from_cli

    return export_from_cli(args)


def _cmd_sites(args: argparse.Namespace) -> int:
    from coverage.cli.sites import sites_from_cli

    return sites_from_cli(args)


def _cmd_app(args: argparse.Namespace) -> int:
    from coverage.app.launch import prepare_app, serve_app

    launch = prepare_app(port=args.port, run_dir=args.run)
    sys.stderr.write(f"zones-blanches app: {launch.url}  (Ctrl-C pour arrêter)\n")
    sys.stderr.flush()
    return serve_app(launch)


def _cmd_fetch(args: argparse.Namespace) -> int:
    from coverage.cli.official import fetch_from_cli

    return fetch_from_cli(args)


def _cmd_prepare(args: argparse.Namespace) -> int:
    from coverage.cli.official import prepare_from_cli

    return prepare_from_cli(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from coverage.demo import write_demo

    paths = write_demo(args.out, seed=args.seed)
    print("Fictional demo territory (not a real place) written:")
    for p in paths:
        print(f"  {p}")
    return EXIT_OK


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


def _handle(args: argparse.Namespace) -> int:
    """Run the subcommand; turn its errors into messages and exit codes."""
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except InputError as exc:
        sys.stderr.write(f"zones-blanches {args.command}: invalid input\n")
        for line in str(exc).splitlines():
            sys.stderr.write(f"  {line}\n")
    except CoverageError as exc:
        sys.stderr.write(f"zones-blanches {args.command}: {exc}\n")
    except OSError as exc:  # a full disk, a read-only folder…: the path and the cause
        if args.debug:
            raise
        where = getattr(args, "out", None)  # a failed write names no file: name the output
        sys.stderr.write(f"zones-blanches {args.command}: {os_error_sentence(exc, where)}\n")
    except KeyboardInterrupt:
        sys.stderr.write("zones-blanches: interrupted; finished outputs are kept, "
                         "nothing half-written\n")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            raise
        sys.stderr.write(
            f"zones-blanches {args.command}: internal error: {type(exc).__name__}: {exc}\n"
            "  (rerun with --debug for the traceback, and please report it)\n"
        )
    return EXIT_ERROR


def _foreign_coverage() -> str | None:
    """Return a message when the loaded ``coverage`` package is not this project, else None.

    The console script (``zones_blanches_entry.py``) checks before importing this package and
    explains the fix; this guard covers ``python -m coverage.cli`` in an odd environment.
    """
    package = sys.modules.get("coverage")
    if getattr(package, "__project__", None) == __project__:
        return None
    where = getattr(package, "__file__", "?")
    return (f"zones-blanches: the package imported as 'coverage' ({where}) is not this "
            "project: coverage.py shadows it; run zones-blanches in its own virtual "
            "environment\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``zones-blanches``; return the exit code."""
    problem = _foreign_coverage()
    if problem is not None:  # pragma: no cover
        sys.stderr.write(problem)
        return EXIT_ENVIRONMENT
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return EXIT_ERROR
    _configure_logging(args.verbose)
    return _handle(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
