"""``zones-blanches sites``: read the arguments, call the library, print the result.

The best new sites of a département of a finished run (:func:`coverage.siting.sites_for_run`,
timed by the run's own engine, :func:`coverage.routing.engine_of_run`): maximal covering
(exact integer program, with the greedy's gap, or the greedy alone) or p-median; candidates
limited by a minimum population, a list of communes and exclusions; the département's
families only by default, the neighbours' in a separate column with ``--avec-voisins``.
Everything printed is in French.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import pandas as pd

from coverage.batch.outdir import check_file_out
from coverage.cli.departements import departement_of_run
from coverage.errors import CoverageError, InputError, OutputError, Problem, os_error_cause
from coverage.files import atomic_path
from coverage.io.tables import SUPPORTED_SUFFIXES, file_suffix
from coverage.labels import (
    FICTIONAL_TITLE,
    SITING_TITLES,
    engine_label,
    fr_decimal,
    fr_int,
    fr_percent,
    type_label,
)
from coverage.results import load_finished_run
from coverage.safe_text import spreadsheet_safe_frame
from coverage.siting import (
    P_MEDIAN_COLUMNS,
    SITES_COLUMNS,
    CodeList,
    SitingOptions,
    SitingResult,
    code_list,
    read_code_list,
    sites_for_run,
)

__all__ = ["format_sites", "is_sites_csv", "read_codes_argument", "sites_from_cli",
           "write_sites_csv"]

#: Columns printed, per objective.
_SHOWN = {
    "couverture": ["rang", "code_insee", "nom", "population_nouvellement_couverte",
                   "communes_nouvellement_couvertes",
                   "population_nouvellement_couverte_hors_departement",
                   "population_zone_blanche_restante"],
    "p-median": ["rang", "code_insee", "nom", "population_rattachee", "communes_rattachees",
                 "minutes_moyennes_avant", "minutes_moyennes_apres",
                 "population_rattachee_hors_departement"],
}
_MINUTES = {"minutes_moyennes_avant", "minutes_moyennes_apres"}
_NEIGHBOURS = {"population_nouvellement_couverte_hors_departement",
               "population_rattachee_hors_departement"}


def _short_base(p: dict[str, Any]) -> str:
    """« dép. 48 » (or « dép. 12, 15 », « toutes communes »): the base in the titles."""
    depts = p.get("depts")
    return "dép. " + ", ".join(depts) if depts else "toutes communes"


def _cell(col: str, value: Any, row: pd.Series) -> str:
    """One table cell in French (numbers with space thousands, NA/NaN as words)."""
    if col in _MINUTES:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—" if int(row.get("population_rattachee", 0)) == 0 else "non accessible"
        return fr_decimal(float(value))
    if isinstance(value, bool) or col in {"rang", "code_insee", "nom"}:
        return str(value)
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return fr_int(float(value))


def _table_text(result: SitingResult) -> str:
    """Return the sites table with French titles stating the base."""
    p, t = result.parameters, result.table
    cols = [c for c in _SHOWN[str(p["objectif"])]
            if c not in _NEIGHBOURS or p.get("voisins_comptes")]
    base = _short_base(p)
    shown = pd.DataFrame({SITING_TITLES[c].format(base=base): [_cell(c, r[c], r)
                                                              for _, r in t.iterrows()]
                          for c in cols})
    return shown.to_string(index=False)


def _candidates_line(p: dict[str, Any]) -> str:
    """Where the candidates come from and what the filters removed."""
    parts = [f"{fr_int(p['candidats'])} candidat(s) : {p['candidats_origine']}"]
    details = [f"{fr_int(p['candidats_avant_filtres'])} avant filtres"]
    if "liste_candidats" in p:
        details.append(f"limités à la liste {p['liste_candidats']}"
                       + (f" ({fr_int(p['codes_autres_departements_ignores'])} code(s) "
                          "d'autres départements ignoré(s))"
                          if p.get("codes_autres_departements_ignores") else ""))
    if "candidats_exclus" in p:
        details.append(f"{fr_int(p['candidats_exclus'])} exclu(s)")
    if "pop_min" in p:
        details.append(f"{fr_int(p['candidats_sous_pop_min'])} sous "
                       f"{fr_int(p['pop_min'])} habitants écarté(s)")
    return parts[0] + " (" + " ; ".join(details) + ")."


def _gap_lines(p: dict[str, Any]) -> list[str]:
    """Return the optimum, the greedy and the gap, in French."""
    covering = p["objectif"] == "couverture"
    unit = "population" if covering else "minutes_habitants"
    what = "habitants nouvellement couverts" if covering else "minutes × habitants"
    base = f"familles comptées : {p['base_objectif']}"
    if p["methode"] == "gloutonne":
        return [f"Méthode gloutonne seule (rapide) : {fr_int(p[f'optimum_{unit}'])} {what} "
                f"({base}) ; écart à l'optimum non calculé"
                + (" (au moins 63 % de l'optimum garanti, exacte pour k = 1)."
                   if covering else ".")]
    gap = float(p[f"ecart_glouton_{unit}"])
    gap_text = ("la méthode gloutonne atteint l'optimum" if gap <= 1e-9 else
                f"écart de la méthode gloutonne : {fr_int(gap)} {what} "
                f"({fr_percent(float(p['ecart_glouton_part']))} de l'optimum)")
    return [f"Optimum exact (programme linéaire en nombres entiers, HiGHS) : "
            f"{fr_int(p[f'optimum_{unit}'])} {what} ({base}) ; méthode gloutonne : "
            f"{fr_int(p[f'glouton_{unit}'])} ; {gap_text}.",
            f"Statut du solveur : {p['statut']}."]


def _p_median_lines(p: dict[str, Any]) -> list[str]:
    """Mean minutes before/after and the unreachable communes (p-median)."""
    def minutes(v: float) -> str:
        return "non accessible" if math.isnan(v) else f"{fr_decimal(v)} min"

    lines = [f"Temps moyen pondéré par la population ({p['base']}, communes avec un temps) : "
             f"{minutes(float(p['minutes_moyennes_avant']))} avant, "
             f"{minutes(float(p['minutes_moyennes_apres']))} après."]
    if p["population_sans_temps"]:
        lines.append(
            f"{fr_int(p['population_sans_temps'])} habitants sans temps d'accès à un service "
            "existant (non accessibles) : hors de l'objectif, aucun temps inventé ; "
            f"{fr_int(p['population_sans_temps_atteinte'])} seraient atteints par les sites "
            f"choisis en {fr_decimal(float(p['borne_minutes']))} min ou moins.")
    return lines


def format_sites(result: SitingResult) -> str:
    """Return the French plain-text report of a :class:`~coverage.siting.SitingResult`.

    The report names the FICTIONAL territory when it is one, the service type, threshold
    (minutes), engine, objective and method, the base of the counts (stated in every
    population column title), the candidates and their filters, the sites in rank order,
    and the optimum with the greedy's gap.
    """
    p, t = result.parameters, result.table
    covering = p["objectif"] == "couverture"
    lines = [FICTIONAL_TITLE] if p.get("fictif") else []
    depts = ", ".join(p["depts"] or ["toutes"])
    lines.append(
        f"Nouveaux sites — {type_label(p['type_service'])}, département {depts}, moteur "
        f"{p['moteur']} ({engine_label(p['moteur'], short=True)})"
        + (f", seuil {fr_decimal(float(p['seuil_minutes']), 0)} min." if covering else "."))
    lines.append("Objectif : " + (
        f"couverture maximale (population à {fr_decimal(float(p['seuil_minutes']), 0)} min "
        "ou moins d'un service, existant ou nouveau ; les sites existants sont fixes)."
        if covering else
        f"p-médiane, exactement {p['k']} site(s) : minimiser les minutes × habitants jusqu'au "
        "service le plus proche, existant ou nouveau."))
    lines.append(f"Base des comptes : familles du {p['base']} dans toutes les colonnes"
                 + (" ; familles des départements voisins comptées dans l'objectif et dans "
                    "une colonne à part (--avec-voisins)." if p.get("voisins_comptes") else
                    " ; les départements voisins ne sont pas comptés (--avec-voisins pour "
                    "les compter à part)."))
    lines.append(_candidates_line(p))
    if covering:
        lines.append(f"Population en zone blanche avant : "
                     f"{fr_int(p['population_zone_blanche_initiale'])} habitants "
                     f"({_short_base(p)}).")
    if t.empty:
        lines.append("Aucun candidat ne couvrirait de nouvelle commune.")
    else:
        lines.append(_table_text(result))
        if covering and len(t) < int(p["k"]):
            lines.append(f"Seulement {len(t)} site(s) : aucun autre candidat ne couvrirait de "
                         "nouvelle commune.")
    lines.extend(_gap_lines(p))
    if not covering:
        lines.extend(_p_median_lines(p))
    return "\n".join(lines)


def is_sites_csv(path: Path) -> bool:
    """Return whether ``path`` is a sites table written by :func:`write_sites_csv`.

    Recognised by its header: the columns of :data:`coverage.siting.SITES_COLUMNS` or
    :data:`coverage.siting.P_MEDIAN_COLUMNS`.
    """
    try:
        with path.open(encoding="utf-8-sig") as fh:
            header = fh.readline().strip()
    except (OSError, UnicodeDecodeError):
        return False
    return header.split(",") in (list(SITES_COLUMNS), list(P_MEDIAN_COLUMNS))


def write_sites_csv(table: pd.DataFrame, out: Path) -> None:
    """Write the sites table to ``out`` as UTF-8 CSV, atomically.

    Text cells that a spreadsheet would read as a formula get a leading quote
    (:func:`coverage.safe_text.spreadsheet_safe_frame`); numbers are unchanged.

    Raises
    ------
    OutputError
        The file cannot be written (the message names it and the cause, in French).
    """
    try:
        with atomic_path(out) as tmp:
            spreadsheet_safe_frame(table).to_csv(tmp, index=False, encoding="utf-8")
    except OSError as exc:
        msg = f"impossible d'écrire {out} : {os_error_cause(exc)}"
        raise OutputError(msg) from exc


def read_codes_argument(value: str, option: str) -> CodeList:
    """Return the codes of ``--candidats`` / ``--exclure``: a file, or codes separated by commas.

    A value naming an existing file, or ending like a table file (``.csv``, ``.xlsx`` …),
    is read as a file (:func:`coverage.siting.read_code_list`); anything else is a list of
    commune codes separated by commas.

    Raises
    ------
    InputError
        A file that does not exist or cannot be read, or has no code column.
    """
    path = Path(value)
    if path.is_file():
        return read_code_list(path)
    if file_suffix(path) in SUPPORTED_SUFFIXES or path.is_dir():
        problem = Problem(f"{option} {value}", None, None, "un fichier existant",
                          "un dossier" if path.is_dir() else "fichier introuvable")
        raise InputError(problem, problem.french())
    return code_list([c for c in value.split(",")], option)


def _options(args: argparse.Namespace) -> SitingOptions:
    """Return the :class:`~coverage.siting.SitingOptions` of the command line."""
    cands = getattr(args, "candidats", None)
    excl = getattr(args, "exclure", None)
    return SitingOptions(
        objective=getattr(args, "objectif", None) or "couverture",
        method=getattr(args, "methode", None) or "exacte",
        neighbours=bool(getattr(args, "avec_voisins", False)),
        pop_min=getattr(args, "pop_min", None),
        candidate_codes=None if cands is None else read_codes_argument(str(cands),
                                                                      "--candidats"),
        exclude_codes=None if excl is None else read_codes_argument(str(excl), "--exclure"),
    )


def sites_from_cli(args: argparse.Namespace) -> int:
    """Print the best new sites of a département of a run (``zones-blanches sites``).

    Parameters
    ----------
    args
        ``dept``, ``type``, ``seuil`` (minutes), ``k``, ``run`` (default ``sorties/demo``),
        ``out`` (optional CSV, written atomically; never a file of a run folder, and an
        existing file not written by ``sites`` only with ``force``:
        :func:`coverage.batch.outdir.check_file_out`), ``objectif`` (``couverture`` or
        ``p-median``), ``methode`` (``exacte`` or ``gloutonne``), ``pop_min``
        (inhabitants), ``candidats`` and ``exclure`` (file or codes), ``avec_voisins``.

    Returns
    -------
    int
        0 (errors are raised as :class:`~coverage.errors.CoverageError` for the CLI to
        print; a bad input file becomes one French line naming the file, row and column).
    """
    out = getattr(args, "out", None)
    if out:  # checked before the run is read: never a run's file, nor a user's file
        check_file_out(out, is_ours=is_sites_csv, force=bool(getattr(args, "force", False)))
    try:
        options = _options(args)
        run = load_finished_run(getattr(args, "run", None))
        dept = departement_of_run(run, args.dept)
        result = sites_for_run(run, dept, type_service=args.type,
                               threshold_min=float(args.seuil), k=int(args.k),
                               options=options)
    except InputError as exc:  # one French line: file, row, column, what was expected
        english = "\n".join(str(pr) for pr in exc.problems)
        text = (" ; ".join(pr.french() for pr in exc.problems[:5])
                if exc.problems and str(exc) == english else str(exc))
        raise CoverageError(" ".join(text.split("\n"))) from exc
    if out:
        write_sites_csv(result.table, Path(out))
    print(format_sites(result))
    if out:
        print(f"Tableau écrit : {out}")
    return 0
