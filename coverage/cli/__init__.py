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
    non_negative_int,
    positive_int,
    positive_minutes,
    settings_from_args,
    thresholds,
)
from coverage.cli.french import FrenchArgumentParser, french_level
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


def _add_parser(sub: _Subparsers, name: str, text: str) -> argparse.ArgumentParser:
    """Add subcommand ``name``: ``text`` is its line in the list and its description."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=text, description=text[:1].upper() + text[1:] + ".")
    return parser


def _add_validate(sub: _Subparsers) -> None:
    """Add ``validate``."""
    p = _add_parser(sub, "validate",
                    "vérifier les fichiers d'entrée (par défaut : la démo intégrée)")
    add_input_args(p)
    add_read_choice_args(p)
    add_settings_arg(p)
    p.set_defaults(handler=_cmd_validate)


def _add_run(sub: _Subparsers) -> None:
    """Add ``run``."""
    p = _add_parser(sub, "run", "calculer les temps d'accès, les zones blanches et les tableaux "
                    "de couverture")
    add_input_args(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dept", nargs="+", metavar="CODE", help="codes des départements à calculer")
    g.add_argument("--all", action="store_true",
                   help="tous les départements du fichier des communes")
    p.add_argument("--types", type=csv_list,
                   help="types de service séparés par des virgules (mediation_familiale, "
                        "espace_rencontre)")
    p.add_argument("--thresholds", type=thresholds, metavar="MINUTES",
                   help="seuils en minutes séparés par des virgules, ex. 20,30,45")
    p.add_argument("--engine", choices=("road", "proxy", "matrice"),
                   help="road (graphe routier, demande --roads), proxy (estimation à vol "
                        "d'oiseau) ou matrice (temps importés, demande --temps) ; défaut : "
                        "matrice avec --temps, road si un réseau routier est donné, sinon "
                        "proxy")
    p.add_argument("--out", type=Path, metavar="DOSSIER",
                   help="dossier de sortie (défaut : sorties/demo pour la démo, sinon "
                        "./sorties/<jeu de données>)")
    p.add_argument("--data-dir", type=Path, metavar="DOSSIER",
                   help="dossier rempli par « fetch » puis « prepare » (avec --dept)")
    p.add_argument("--scheduler", metavar="tcp://HOTE:PORT",
                   help="calculer les partitions sur un cluster Dask distributed existant")
    p.add_argument("--workers", type=_workers, metavar="N",
                   help="processus de calcul locaux, ≥ 1 (défaut : nombre de processeurs)")
    p.add_argument("--no-cache", action="store_true",
                   help="recalculer toutes les partitions (sans le cache)")
    p.add_argument("--no-isochrones", action="store_true",
                   help="ne pas calculer les bandes d'isochrones")
    p.add_argument("--isochrones-geojson", action="store_true",
                   help="écrire aussi chaque couche d'isochrones en GeoJSON (EPSG:4326) "
                        "dans <sortie>/isochrones_geojson/")
    add_settings_arg(p)
    _add_times_args(p)
    _add_liaisons_arg(p)
    _add_force_arg(p, "écrire dans un dossier non vide qui n'est pas un dossier de calcul "
                      "(les fichiers que le calcul n'a pas écrits ne sont jamais modifiés ni "
                      "supprimés)")
    add_read_choice_args(p)
    p.add_argument("--force-reseau", dest="force_network", action="store_true",
                   help="utiliser le moteur road même si la plupart des communes sont hors "
                        "de son réseau (un tel calcul est refusé par défaut)")
    p.set_defaults(handler=_cmd_run)


def _add_liaisons_arg(p: argparse.ArgumentParser) -> None:
    """Add ``--liaisons FILE``: the ferry links of the proxy engine."""
    p.add_argument("--liaisons", type=Path, metavar="FICHIER",
                   help="liaisons maritimes du moteur proxy (CSV/XLSX : port_1, port_2 = codes "
                        "INSEE des communes, minutes = durée de la traversée, dans les deux "
                        "sens) ; défaut : aucune, les îles n'atteignent que leurs propres "
                        "services")


def _add_force_arg(p: argparse.ArgumentParser, what: str) -> None:
    """Add ``--force``: accept an output the safety checks of ``--out`` would refuse."""
    p.add_argument("--force", action="store_true", help=what)


def _add_times_args(p: argparse.ArgumentParser) -> None:
    """Add ``--temps FILE``, ``--temps-unite`` and ``--settings FILE`` to ``run``."""
    p.add_argument("--temps", type=Path, metavar="FICHIER",
                   help="temps de trajet importés (CSV/XLSX/Parquet : origine, destination, "
                        "minutes[, km] ; ou une matrice), lus par le moteur « matrice »")
    p.add_argument("--temps-unite", choices=("min", "s", "h"),
                   help="unité des temps de --temps (défaut : d'après les noms de colonnes, "
                        "sinon minutes)")
    p.add_argument("--settings", type=Path, metavar="FICHIER", dest="settings_file",
                   help="fichier de paramètres JSON (écrit par « calibrer », par exemple) ; "
                        "--set s'applique par-dessus")


def _add_export(sub: _Subparsers) -> None:
    """Add ``export``."""
    p = _add_parser(sub, "export", "exporter les tableaux et les cartes d'un département "
                    "à partir d'un calcul")
    p.add_argument("--dept", required=True, metavar="CODE", help="code du département")
    p.add_argument("--run", type=Path, metavar="DOSSIER",
                   help="dossier du calcul (défaut : le calcul de la démo)")
    p.add_argument("--formats", type=csv_list, default=None,
                   metavar="FORMATS",
                   help="formats séparés par des virgules parmi csv, csv_fr, xlsx, gpkg, "
                        "parquet, png, png_attente (ou all) ; défaut : csv, csv_fr, xlsx, "
                        "gpkg, png")
    p.add_argument("--out", type=Path, metavar="DOSSIER",
                   help="dossier de l'export (défaut : <calcul>/exports/<département>)")
    p.add_argument("--internal", action="store_true",
                   help="ne pas masquer les petits effectifs (export interne, à ne pas "
                        "publier ; le secret statistique s'applique par défaut)")
    p.set_defaults(handler=_cmd_export)


def _add_sites(sub: _Subparsers) -> None:
    """Add ``sites``."""
    p = _add_parser(sub, "sites", "où k nouveaux sites couvriraient le plus de familles "
                    "(couverture maximale exacte ou gloutonne, ou p-médiane, à partir d'un "
                    "calcul)")
    p.add_argument("--dept", required=True, metavar="CODE", help="département des sites")
    p.add_argument("--type", required=True, metavar="TYPE",
                   help="type de service des nouveaux sites (mediation_familiale, "
                        "espace_rencontre)")
    p.add_argument("--seuil", type=positive_minutes, default=30.0, metavar="MINUTES",
                   help="seuil en minutes (défaut : 30)")
    p.add_argument("-k", type=positive_int, default=1, metavar="K",
                   help="nombre de nouveaux sites (défaut : 1)")
    p.add_argument("--run", type=Path, metavar="DOSSIER",
                   help="dossier du calcul (défaut : le calcul de la démo)")
    p.add_argument("--out", type=Path, metavar="FICHIER",
                   help="écrire le tableau en CSV (écriture atomique)")
    _add_sites_choice_args(p)
    _add_force_arg(p, "remplacer un fichier --out existant qui n'a pas été écrit par "
                      "« sites »")
    p.set_defaults(handler=_cmd_sites)


def _add_sites_choice_args(p: argparse.ArgumentParser) -> None:
    """Add the objective, method, base and candidate filters of ``sites``."""
    p.add_argument("--objectif", choices=("couverture", "p-median"), default="couverture",
                   help="couverture : le plus d'habitants à --seuil minutes ou moins d'un "
                        "service (défaut) ; p-median : exactement k sites minimisant les "
                        "minutes × habitants")
    p.add_argument("--methode", choices=("exacte", "gloutonne"), default="exacte",
                   help="exacte : optimum d'un programme en nombres entiers (HiGHS), avec "
                        "l'écart de la méthode gloutonne (défaut) ; gloutonne : rapide, "
                        "sans l'écart")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--avec-voisins", action="store_true",
                   help="compter aussi les familles des communes du calcul des autres "
                        "départements, dans une colonne à part (défaut : le département seul)")
    g.add_argument("--dept-only", action="store_true",
                   help="ne compter que les familles du département (c'est le défaut)")
    p.add_argument("--pop-min", type=non_negative_int, metavar="HABITANTS",
                   help="ne garder que les candidats dont la commune a au moins cette "
                        "population")
    p.add_argument("--candidats", metavar="FICHIER",
                   help="ne garder que les communes listées (CSV/XLSX, colonne code_insee : "
                        "bourgs-centres, France Services, agences MSA ou CAF…) ; les codes "
                        "d'autres départements sont ignorés")
    p.add_argument("--exclure", metavar="FICHIER|CODES",
                   help="écarter ces communes : un fichier comme --candidats, ou des codes "
                        "séparés par des virgules")


def _add_app(sub: _Subparsers) -> None:
    """Add ``app``."""
    p = _add_parser(sub, "app", "lancer l'application Streamlit sur 127.0.0.1")
    p.add_argument("--port", type=int, default=8501, help="port local (défaut : 8501)")
    p.add_argument("--run", type=Path, metavar="DOSSIER", help="dossier du calcul à ouvrir")
    p.set_defaults(handler=_cmd_app)


def _add_official(sub: _Subparsers) -> None:
    """Add ``fetch`` and ``prepare``."""
    p = _add_parser(sub, "fetch", "télécharger les données ouvertes officielles de "
                    "départements")
    p.add_argument("--dept", nargs="+", required=True, metavar="CODE",
                   help="codes des départements")
    p.add_argument("--year", type=int, metavar="ANNEE",
                   help="millésime des données INSEE (défaut : le plus récent connu)")
    p.add_argument("--data-dir", type=Path, default=Path("donnees"), metavar="DOSSIER",
                   help="dossier des données (défaut : donnees)")
    p.add_argument("--mirror", metavar="URL_DE_BASE",
                   help="miroir interne qui garde les chemins officiels")
    p.add_argument("--no-osm", action="store_true",
                   help="ne pas télécharger l'extrait routier OSM")
    p.add_argument("--generalisation", choices=("5m", "50m", "100m", "1000m"),
                   help="généralisation des contours Etalab (défaut : 100m)")
    p.add_argument("--retries", type=int, metavar="N",
                   help="nouvelles tentatives par fichier (défaut : 4)")
    p.add_argument("--timeout", type=float, metavar="SECONDES",
                   help="délai d'attente du réseau, en secondes (défaut : 60)")
    p.add_argument("--no-neighbours", action="store_true",
                   help="ne pas télécharger les extraits OSM des départements voisins (les "
                        "routes s'arrêtent alors à la limite du département)")
    p.set_defaults(handler=_cmd_fetch)

    p = _add_parser(sub, "prepare", "convertir les fichiers officiels téléchargés au format "
                    "des entrées")
    p.add_argument("--dept", nargs="+", required=True, metavar="CODE",
                   help="codes des départements")
    p.add_argument("--data-dir", type=Path, default=Path("donnees"), metavar="DOSSIER",
                   help="dossier des données (défaut : donnees)")
    p.set_defaults(handler=_cmd_prepare)


def _add_suivi_parser(sub: _Subparsers) -> None:
    """Add ``suivi`` (the shared follow-up of waiting lists)."""
    p = _add_parser(sub, "suivi", "écrire le suivi partagé des listes d'attente "
                    "(suivi_listes_attente.xlsx/.csv) d'un calcul à partir des fichiers de "
                    "retour")
    p.add_argument("--run", type=Path, default=None, metavar="DOSSIER",
                   help="dossier d'un calcul terminé (défaut : le calcul de la démo)")
    p.add_argument("--waiting", nargs="+", required=True,
                   metavar="FICHIER|DOSSIER|SOURCE=FICHIER",
                   help="fichiers de retour des listes d'attente (CSV/XLSX) ou dossiers qui "
                        "les contiennent")
    p.add_argument("--seuil", type=float, default=None, metavar="MINUTES",
                   help="seuil de la population en zone blanche (défaut : 30 si le calcul "
                        "l'a, sinon son plus petit)")
    p.add_argument("--out", type=Path, default=None, metavar="DOSSIER",
                   help="dossier des fichiers de suivi (défaut : le dossier du calcul)")
    add_settings_arg(p)
    p.set_defaults(handler=_cmd_suivi)


def _cmd_suivi(args: argparse.Namespace) -> int:
    from coverage.cli.suivi import suivi_from_cli

    return suivi_from_cli(args)


def _add_demo(sub: _Subparsers) -> None:
    """Add ``demo``."""
    p = _add_parser(sub, "demo", "régénérer le territoire de démonstration FICTIF "
                    "(déterministe)")
    p.add_argument("--out", type=Path, metavar="DOSSIER",
                   help="dossier (défaut : data/demo, la démo intégrée)")
    p.add_argument("--seed", type=int, default=None, metavar="GRAINE",
                   help="graine du tirage aléatoire (défaut : celle de la démo intégrée)")
    p.set_defaults(handler=_cmd_demo)


def _add_calibrer(sub: _Subparsers) -> None:
    """Add ``calibrer``."""
    p = _add_parser(sub, "calibrer", "ajuster les paramètres du proxy sur des temps "
                    "routiers réels (réseau routier ou tableau de temps) et écrire un fichier "
                    "de paramètres")
    p.add_argument("--communes", type=Path, required=True, metavar="FICHIER",
                   help="points des communes : code_insee, lon, lat, densite (1-4) ou "
                        "--densite")
    p.add_argument("--densite", type=Path, metavar="FICHIER",
                   help="grille de densité INSEE jointe sur les codes")
    p.add_argument("--roads", type=Path, metavar="FICHIER",
                   help="réseau routier qui donne le temps de chaque paire de communes")
    p.add_argument("--temps", type=Path, metavar="FICHIER",
                   help="temps réels au lieu d'un réseau routier (tableau long ou matrice, "
                        "comme run --temps)")
    p.add_argument("--temps-unite", choices=("min", "s", "h"),
                   help="unité des temps de --temps (défaut : d'après les colonnes, sinon "
                        "minutes)")
    p.add_argument("--out", type=Path, metavar="FICHIER",
                   help="fichier de paramètres à écrire (JSON, pour run --settings)")
    add_settings_arg(p)
    p.set_defaults(handler=_cmd_calibrer)


def _cmd_calibrer(args: argparse.Namespace) -> int:
    from coverage.cli.calibrer import calibrer_from_cli

    return calibrer_from_cli(args)


def _add_rapport_parser(sub: _Subparsers) -> None:
    """Add ``rapport`` (the département report, DOCX and HTML)."""
    p = _add_parser(sub, "rapport", "écrire le rapport d'un département (DOCX et page "
                    "HTML autonome) à partir d'un calcul")
    p.add_argument("--dept", required=True, metavar="CODE", help="code du département")
    p.add_argument("--run", type=Path, metavar="DOSSIER",
                   help="dossier du calcul (défaut : le calcul de la démo)")
    p.add_argument("--seuil", type=float, default=None, metavar="MINUTES",
                   help="seuil des cartes et des listes (défaut : 30 si le calcul l'a)")
    p.add_argument("--out", type=Path, metavar="DOSSIER",
                   help="dossier du rapport (défaut : <calcul>/exports/<département>)")
    p.set_defaults(handler=_cmd_rapport)


def _cmd_rapport(args: argparse.Namespace) -> int:
    from coverage.cli.rapport import rapport_from_cli

    return rapport_from_cli(args)


def _add_accessibilite_parser(sub: _Subparsers) -> None:
    """Add ``accessibilite`` (the 2SFCA / E2SFCA index of a département)."""
    p = _add_parser(sub, "accessibilite", "indice d'accessibilité (2SFCA ou E2SFCA) des "
                    "communes d'un département : capacité des services à portée, pour "
                    "100 000 habitants")
    p.add_argument("--dept", required=True, metavar="CODE", help="code du département")
    p.add_argument("--run", type=Path, metavar="DOSSIER",
                   help="dossier du calcul (défaut : le calcul de la démo)")
    p.add_argument("--type", metavar="TYPE",
                   help="type de service (défaut : chaque type du calcul)")
    p.add_argument("--methode", choices=("2sfca", "e2sfca"), default="e2sfca",
                   help="2sfca (poids 1 jusqu'au seuil) ou e2sfca (poids décroissants par "
                        "bande de temps, défaut)")
    p.add_argument("--seuil", type=float, default=30.0, metavar="MINUTES",
                   help="aire de chalandise, en minutes (défaut : 30)")
    p.add_argument("--population", default="population", metavar="COLONNE",
                   help="colonne des communes qui donne la demande (défaut : population)")
    p.add_argument("--out", type=Path, metavar="DOSSIER",
                   help="dossier des tableaux (défaut : <calcul>/exports/<département>)")
    p.set_defaults(handler=_cmd_accessibilite)


def _cmd_accessibilite(args: argparse.Namespace) -> int:
    from coverage.cli.accessibilite import accessibilite_from_cli

    return accessibilite_from_cli(args)


def _add_comparer_parser(sub: _Subparsers) -> None:
    """Add ``comparer`` (what changed between two runs)."""
    p = _add_parser(sub, "comparer", "comparer deux calculs (ex. l'an dernier et cette "
                    "année) : communes entrant en zone blanche ou en sortant, couverture, "
                    "services ajoutés ou retirés")
    p.add_argument("run_a", type=Path, metavar="CALCUL_A",
                   help="dossier du premier calcul (l'ancien)")
    p.add_argument("run_b", type=Path, metavar="CALCUL_B",
                   help="dossier du second calcul (le nouveau)")
    p.add_argument("--out", type=Path, metavar="DOSSIER",
                   help="dossier de la comparaison (défaut : "
                        "<calcul B>/exports/comparaison_<nom du calcul A>)")
    p.set_defaults(handler=_cmd_comparer)


def _cmd_comparer(args: argparse.Namespace) -> int:
    from coverage.cli.comparer import comparer_from_cli

    return comparer_from_cli(args)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``zones-blanches``."""
    parser = FrenchArgumentParser(
        prog="zones-blanches",
        description="Zones blanches des services de médiation familiale et des espaces de "
                    "rencontre.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="afficher la version et quitter")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="plus de lignes de journal (répétable : -vv)")
    parser.add_argument("--debug", action="store_true",
                        help="afficher la trace des erreurs internes")
    sub = parser.add_subparsers(dest="command", metavar="COMMANDE")
    for add in (_add_validate, _add_run, _add_export, _add_sites, _add_app, _add_official,
                _add_demo, _add_suivi_parser, _add_calibrer, _add_rapport_parser,
                _add_accessibilite_parser, _add_comparer_parser):
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
    sys.stderr.write(f"application zones-blanches : {launch.url}  (Ctrl-C pour arrêter)\n")
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
    print("Territoire de démonstration FICTIF (pas un lieu réel) écrit :")
    for p in paths:
        print(f"  {p}")
    return EXIT_OK


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_FrenchLogFormatter("%(levelname)s %(name)s : %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


class _FrenchLogFormatter(logging.Formatter):
    """Log lines with the level in French (« avertissement », « erreur »…)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        """Return the line with the French level name."""
        return self._style.format(logging.makeLogRecord(
            {**record.__dict__, "levelname": french_level(record.levelname)}))


def _handle(args: argparse.Namespace) -> int:
    """Run the subcommand; turn its errors into messages and exit codes."""
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except InputError as exc:
        lines = str(exc).splitlines() or ["entrée invalide"]
        if len(lines) == 1:
            sys.stderr.write(f"zones-blanches {args.command} : entrée invalide : {lines[0]}\n")
        else:
            sys.stderr.write(f"zones-blanches {args.command} : entrée invalide "
                             f"({len(lines)} problèmes) :\n")
            for line in lines:
                sys.stderr.write(f"  {line}\n")
    except CoverageError as exc:
        sys.stderr.write(f"zones-blanches {args.command} : {exc}\n")
    except OSError as exc:  # a full disk, a read-only folder…: the path and the cause
        if args.debug:
            raise
        where = getattr(args, "out", None)  # a failed write names no file: name the output
        sys.stderr.write(f"zones-blanches {args.command} : {os_error_sentence(exc, where)}\n")
    except KeyboardInterrupt:
        sys.stderr.write("zones-blanches : interrompu ; les sorties terminées sont gardées, "
                         "aucune n'est à moitié écrite\n")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            raise
        sys.stderr.write(
            f"zones-blanches {args.command} : erreur interne ({type(exc).__name__} : {exc}) ; "
            "relancez avec --debug pour voir la trace, et signalez-la\n"
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
    return (f"zones-blanches : le paquet importé sous le nom « coverage » ({where}) n'est pas "
            "ce projet : coverage.py le masque ; lancez zones-blanches dans son propre "
            "environnement virtuel\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``zones-blanches``; return the exit code."""
    problem = _foreign_coverage()
    if problem is not None:  # pragma: no cover
        sys.stderr.write(problem)
        return EXIT_ENVIRONMENT
    parser = build_parser()
    try:  # a bad command line: one French line on stderr; --help, --version: their text
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return EXIT_ERROR
    _configure_logging(args.verbose)
    return _handle(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
