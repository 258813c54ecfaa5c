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

from coverage._version import __project__, __version__
from coverage.errors import CoverageError, InputError
from coverage.settings import Settings, settings_with_overrides

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERRUPTED = 130

log = logging.getLogger(__name__)


def _thresholds(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        msg = f"thresholds must be minutes separated by commas (e.g. 20,30,45), got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not values or any(v <= 0 for v in values):
        msg = f"thresholds must be positive minutes, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return tuple(sorted(set(values)))


def _csv_list(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        msg = f"expected KEY=VALUE (e.g. snap_max_m=3000), got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return key.strip(), value


def _add_settings_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE",
                   help="override a setting of coverage/settings.py (repeatable), e.g. "
                   "--set proxy_detour_factor=1.4 --set snap_max_m=3000 "
                   "--set max_input_bytes=50000000")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings of a command: the defaults with the ``--set KEY=VALUE`` overrides."""
    return settings_with_overrides(Settings(), dict(getattr(args, "overrides", []) or []))


def _add_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--communes", type=Path, help="communes file (default: the embedded demo)")
    p.add_argument("--densite", type=Path,
                   help="INSEE density grid to join to the communes (CSV/XLSX)")
    p.add_argument("--services", type=Path, help="services file (CSV, XLSX, GeoJSON, …)")
    p.add_argument("--waiting", type=Path, help="waiting-list / activity-returns file")
    p.add_argument("--roads", type=Path, help="road network (.osm, .osm.gz/.bz2, .osm.pbf, "
                   ".graphml)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``zones-blanches``."""
    parser = argparse.ArgumentParser(
        prog="zones-blanches",
        description="White zones of family mediation services and espaces de rencontre.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log lines")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="validate input files (default: the embedded demo)")
    _add_input_args(p)
    _add_settings_arg(p)
    p.set_defaults(handler=_cmd_validate)

    p = sub.add_parser("run", help="compute access times, white zones and coverage tables")
    _add_input_args(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dept", nargs="+", metavar="CODE", help="département codes to run")
    g.add_argument("--all", action="store_true", help="every département of the communes file")
    p.add_argument("--types", type=_csv_list, help="service types, comma-separated")
    p.add_argument("--thresholds", type=_thresholds, help="minutes, e.g. 20,30,45")
    p.add_argument("--engine", choices=("road", "proxy"),
                   help="road (needs --roads) or proxy; default: road when roads are given")
    p.add_argument("--out", type=Path, help="output folder (default: ./sorties/<data set>)")
    p.add_argument("--data-dir", type=Path,
                   help="folder filled by 'fetch' + 'prepare' (used with --dept)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the partitions on an existing Dask distributed cluster")
    p.add_argument("--workers", type=int, help="local worker processes (default: CPU count)")
    p.add_argument("--no-cache", action="store_true", help="recompute every partition")
    p.add_argument("--no-isochrones", action="store_true", help="skip the isochrone bands")
    p.add_argument("--isochrones-geojson", action="store_true",
                   help="also write each isochrone layer as GeoJSON (EPSG:4326) in "
                        "<out>/isochrones_geojson/")
    _add_settings_arg(p)
    p.set_defaults(handler=_cmd_run)

    p = sub.add_parser("export", help="export a département's tables and maps from a run")
    p.add_argument("--dept", required=True, metavar="CODE")
    p.add_argument("--run", type=Path, help="run output folder (default: the demo run)")
    p.add_argument("--formats", type=_csv_list, default=("csv", "xlsx", "gpkg", "png"),
                   help="csv,csv_fr,xlsx,gpkg,parquet,png,png_attente (or all)")
    p.add_argument("--out", type=Path, help="export folder (default: <run>/exports/<dept>)")
    p.add_argument("--internal", action="store_true",
                   help="do not mask small counts (statistical secrecy applies by default)")
    p.set_defaults(handler=_cmd_export)

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
    p.set_defaults(handler=_cmd_sites)

    p = sub.add_parser("app", help="start the Streamlit app on 127.0.0.1")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--run", type=Path, help="run output folder to open")
    p.set_defaults(handler=_cmd_app)

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

    p = sub.add_parser("demo", help="regenerate the fictional demo territory (deterministic)")
    p.add_argument("--out", type=Path, help="folder (default: the embedded data/demo)")
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(handler=_cmd_demo)
    return parser


def _cmd_validate(args: argparse.Namespace) -> int:
    from coverage.io.inputs import validate_inputs

    report = validate_inputs(
        communes=args.communes, densite=args.densite, services=args.services,
        waiting=args.waiting, roads=args.roads, settings=settings_from_args(args),
    )
    print(report.text())
    return EXIT_OK if report.ok else EXIT_ERROR


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
    from coverage.app.launch import launch_app

    return launch_app(port=args.port, run_dir=args.run)


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``zones-blanches``; returns the exit code."""
    import coverage

    if getattr(coverage, "__project__", None) != __project__:  # pragma: no cover
        from zones_blanches_entry import check_coverage_is_ours

        sys.stderr.write(check_coverage_is_ours() or "")
        return EXIT_ENVIRONMENT
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return EXIT_ERROR
    _configure_logging(args.verbose)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except InputError as exc:
        sys.stderr.write(f"zones-blanches {args.command}: invalid input\n")
        for line in str(exc).splitlines():
            sys.stderr.write(f"  {line}\n")
        return EXIT_ERROR
    except CoverageError as exc:
        sys.stderr.write(f"zones-blanches {args.command}: {exc}\n")
        return EXIT_ERROR
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
