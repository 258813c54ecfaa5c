"""Everything a user reads is French: the CLI (help, errors, outputs) and every app page.

A walk collects the text a user reads — the ``--help`` of every subcommand, argparse's
own error lines, the outputs of ``run``, ``export``, ``sites``, ``rapport`` and ``validate``
on the FICTIONAL demo, and every element of every app page through Streamlit's AppTest
(titles, markdown, captions, labels, help, placeholders, options, metric values, dataframe
column headers, chart titles, warnings) — and fails on any English UI word of
:data:`ENGLISH`, on ``inf``/``nan`` written as words, and on English number formats.

Exceptions are only proper nouns and codes (:data:`ALLOWED`: OpenStreetMap, ``road``,
file names, option names, snake_case identifiers…), removed before the search.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from coverage import results
from coverage.cli import EXIT_ERROR, build_parser, main
from coverage.errors import InputError, Problem

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = REPO_ROOT / "app.py"

#: English words and phrases of a user interface (case as written; both cases when usual).
ENGLISH: tuple[str, ...] = (
    r"\b[Tt]he\b", r"\b[Oo]f\b", r"\b[Aa]nd\b", r"\b[Tt]o\b", r"\b[Ii]s\b", r"\b[Aa]re\b",
    r"\b[Nn]ot\b", r"\b[Ff]or\b", r"\b[Ww]ith\b", r"\b[Ff]rom\b", r"\b[Ww]hen\b", r"\b[Oo]r\b",
    r"\b[Cc]hoose\b", r"\b[Ss]elect\b", r"\bNo ", r"\b[Nn]one\b", r"\b[Ee]rror\b",
    r"\bERROR\b", r"\b[Ww]arning\b", r"\bWARNING\b", r"not found", r"usage:", r"options:",
    r"arguments:", r"show this help", r"\b[Rr]equired\b", r"\b[Ii]nvalid\b",
    r"\b[Ee]xpected\b", r"\b[Ff]ound\b", r"\b[Mm]issing\b", r"\b[Uu]nknown\b",
    r"\b[Dd]efault\b", r"\b[Ff]iles\b", r"\bFILE\b", r"\b[Ff]older\b", r"\bFOLDER\b",
    r"\b[Ww]ritten\b", r"\b[Tt]hreshold\b", r"\b[Ee]ngine\b", r"\b[Ii]nhabitants\b",
    r"\b[Ff]amilies\b", r"\b[Oo]utputs?\b", r"\b[Rr]esult\b", r"\b[Rr]ow\b",
    r"\b[Cc]olumn\b", r"\b[Pp]lease\b", r"\b[Dd]ownload\b", r"\b[Ll]oading\b",
    r"\b[Rr]unning\b", r"\b[Ii]nterrupted\b", r"\bFICTIONAL\b", r"\b[Ww]hite zones?\b",
    r"\b[Bb]eyond\b", r"\b[Ss]ervice type\b", r"\b[Cc]ommunes? in\b", r"Traceback",
    r"\b[Aa]t\b", r"\b[Bb]y\b", r"\b[Ii]n\b", r"\b[Tt]his\b", r"\b[Tt]hat\b",
    r"\b[Tt]hese\b", r"\b[Tt]heir\b", r"\b[Ii]ts\b", r"\b[Ww]as\b", r"\b[Ww]ere\b",
    r"\b[Hh]as\b", r"\b[Hh]ave\b", r"\b[Bb]e\b", r"\b[Bb]een\b", r"\b[Ww]ill\b",
    r"\b[Cc]an(?:not)?\b", r"\b[Cc]ould\b", r"\b[Ss]hould\b", r"\b[Mm]ust\b",
    r"\b[Oo]nly\b", r"\b[Tt]han\b", r"\b[Ww]hich\b", r"\b[Ww]ithout\b", r"\b[Ii]nto\b",
)
#: Unreachable or missing values written as words: never shown to a user.
NOT_A_NUMBER = r"\b(?:inf|nan|NaN|Inf|INF|NAN|[Ii]nfinity|NaT)\b|<NA>"
#: English number formats: decimal point, % glued to the number.
ENGLISH_NUMBER = r"(?<![\w.])\d+\.\d+(?![\w.])|\d%"

#: Proper nouns and codes allowed in French text (removed before the search).
ALLOWED: tuple[str, ...] = (
    r"OpenStreetMap", r"Dask distributed", r"GeoPackage", r"GeoJSON", r"GraphML",
    r"Streamlit", r"Leaflet", r"Admin Express", r"Open Database License", r"ODbL \d\.\d",
    r"Etalab \d\.\d", r"Licence Ouverte", r"Ctrl-C",
    r"`[^`]*`",                        # code spans
    r"\{[^{}]*\}",                      # format fields of the source literals
    r"https?://\S+", r"tcp://\S+",     # addresses
    r"\S*/\S*",                        # paths (anything with a slash)
    r"\S+\.(?:csv|xlsx|json|parquet|gpkg|geojson|osm|pbf|graphml|png|docx|html|txt|"
    r"gz|bz2|zip|py)\b",               # file names
    r"(?<!\w)--?[\w-]+",               # option names
    r"\S+=\S+",                        # KEY=VALUE examples
    r"\w*_\w*",                        # snake_case identifiers and codes
    r"\b\d+(?:\.\d+){2,}\b",           # versions, addresses (0.1.0, 127.0.0.1)
)

_ENGLISH = re.compile("|".join(ENGLISH))
_NOT_A_NUMBER = re.compile(NOT_A_NUMBER)
_ENGLISH_NUMBER = re.compile(ENGLISH_NUMBER)
_ALLOWED = re.compile("|".join(ALLOWED))


def english_in(text: str, *, numbers: bool = True) -> list[str]:
    """Return the English words, inf/nan words and English numbers found in ``text``."""
    bare = _ALLOWED.sub(" ", text)
    found = [m.group(0) for m in _ENGLISH.finditer(bare)]
    found += [m.group(0) for m in _NOT_A_NUMBER.finditer(bare)]
    if numbers:
        found += [m.group(0) for m in _ENGLISH_NUMBER.finditer(bare)]
    return found


def assert_french(texts: dict[str, str], *, numbers: bool = True) -> None:
    """Fail with every English text of ``texts`` (where → text) and what was found in it."""
    bad = {where: (english_in(text, numbers=numbers), text[:300])
           for where, text in texts.items() if english_in(text, numbers=numbers)}
    assert not bad, json.dumps(bad, ensure_ascii=False, indent=1)


def test_the_checker_finds_english_and_allows_codes() -> None:
    """The patterns catch argparse's and Streamlit's English and let codes through."""
    for text in ("usage: zones-blanches [-h]", "show this help message and exit",
                 "error: the following arguments are required: --dept", "Choose an option",
                 "minutes: inf", "taux nan", "7.2", "100%", "No candidate", "Warning: x",
                 "file not found", "White zones beyond 30 min",
                 "2 service(s) without coordinates placed at their commune's point"):
        assert english_in(text), text
    for text in ("utilisation : zones-blanches [-h]", "temps sur le graphe OpenStreetMap",
                 "moteur road (graphe routier OSM) ; voir data/demo/communes.csv",
                 "--no-cache : sans le cache", "mediation_familiale", "7,2", "100 %",
                 "file d'attente", "ligne 3, colonne « lon » : attendu un nombre"):
        assert not english_in(text), (text, english_in(text))


# --- the command line: help, argparse errors ---------------------------------------------
def _subcommands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_of_every_subcommand_is_french(capsys: pytest.CaptureFixture[str]) -> None:
    names = _subcommands()
    assert {"run", "export", "sites", "rapport", "validate", "app"} <= set(names)
    texts = {}
    for argv in ([], *([n] for n in names)):
        code, out, err = _cli(capsys, *argv, "--help")
        assert code == 0 and not err, (argv, err)
        assert out.startswith("utilisation : zones-blanches") and "options :" in out, argv
        assert "afficher cette aide et quitter" in out
        texts[" ".join(argv) or "zones-blanches"] = out
    code, out, _ = _cli(capsys)  # no command: the help, exit 2
    assert code == EXIT_ERROR and out.startswith("utilisation : ")
    texts["(sans commande)"] = out
    assert_french(texts, numbers=False)  # help gives examples of values (1.4)


@pytest.mark.parametrize("argv", [
    ["nope"],
    ["export"],
    ["run", "--engine", "bus"],
    ["run", "--dept", "ZA", "--all"],
    ["run", "--thresholds", "vingt"],
    ["run", "--workers", "0"],
    ["run", "--bogus"],
    ["run", "--dept"],
    ["sites", "--dept", "ZA", "--type", "espace_rencontre", "-k", "zéro"],
    ["sites", "--dept", "ZA", "--type", "espace_rencontre", "--seuil", "-5"],
    ["app", "--port", "huit"],
    ["validate", "--densite-niveaux", "5"],
    ["run", "--set", "snap_max_m"],
    ["run", "--layer", "services="],
    ["fetch", "--dept", "48", "--timeout", "long"],
])
def test_bad_command_lines_give_one_french_line(capsys: pytest.CaptureFixture[str],
                                                argv: list[str]) -> None:
    code, out, err = _cli(capsys, *argv)
    assert code == EXIT_ERROR and not out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("zones-blanches") and " : erreur : " in lines[0], err
    assert "--help" in lines[0]
    assert_french({" ".join(argv): lines[0]}, numbers=False)


def test_problem_lines_are_french() -> None:
    problem = Problem("services.csv", 3, "lon", "un nombre", "abc")
    assert str(problem) == "services.csv, ligne 3, colonne « lon » : attendu un nombre, " \
                           "trouvé « abc »"
    assert problem.french() == str(problem)
    assert str(InputError(problem)) == str(problem)
    assert str(InputError([])) == "entrée invalide"


def _literals(path: Path) -> Iterator[tuple[int, str]]:
    """Return the string literals of a module that are not docstrings (f-string parts too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings and " " in node.value.strip():
            yield node.lineno, node.value


def test_no_english_text_in_the_cli_and_the_app_sources() -> None:
    """Every message of the CLI and the app, even on paths no test walks, is French.

    ``coverage/cli/french.py`` holds argparse's English sentences on purpose (to translate
    them); docstrings and comments are for developers.
    """
    modules = [p for p in sorted((REPO_ROOT / "coverage" / "cli").glob("*.py"))
               + sorted((REPO_ROOT / "coverage" / "app").glob("*.py"))
               + [REPO_ROOT / "coverage" / "errors.py", APP, REPO_ROOT / "zones_blanches_entry.py"]
               if p.name != "french.py"]
    texts = {f"{p.relative_to(REPO_ROOT)}:{line}": text
             for p in modules for line, text in _literals(p)}
    assert len(texts) > 300
    assert_french(texts, numbers=False)


# --- the command line on the FICTIONAL demo ------------------------------------------------
@pytest.fixture(scope="module")
def demo_proxy_cli(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """``zones-blanches run --engine proxy`` on the demo, as a user runs it (own process)."""
    out = tmp_path_factory.mktemp("cli_proxy") / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "coverage.cli", "run", "--engine", "proxy", "--no-isochrones",
         "--workers", "1", "--out", str(out)], capture_output=True, text=True, timeout=600,
        cwd=out.parent, env={**os.environ, "ZB_PROGRESS": "0"}, check=False)
    assert proc.returncode == 0, proc.stderr
    proc.stdout, proc.stderr = (t.replace(str(out), "<sortie>") for t in (proc.stdout,
                                                                          proc.stderr))
    return proc


def _run_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                 demo_road_run: Path) -> dict[str, str]:
    """Return the outputs (stdout and stderr) of export, sites, rapport on the demo."""
    texts: dict[str, str] = {}
    for name, argv in {
        "export": ["export", "--dept", "ZA", "--run", str(demo_road_run), "--out",
                   str(tmp_path / "exp")],
        "export interne": ["export", "--dept", "ZB", "--run", str(demo_road_run), "--formats",
                           "csv", "--internal", "--out", str(tmp_path / "int")],
        "sites": ["sites", "--dept", "ZA", "--type", "espace_rencontre", "-k", "2", "--run",
                  str(demo_road_run), "--out", str(tmp_path / "sites.csv")],
        "sites sans candidat": ["sites", "--dept", "ZA", "--type", "mediation_familiale",
                                "--seuil", "45", "--run", str(demo_road_run)],
        "rapport": ["rapport", "--dept", "ZB", "--run", str(demo_road_run), "--out",
                    str(tmp_path / "rapport")],
    }.items():
        code, out, err = _cli(capsys, *argv)
        assert code == 0, (name, err)
        texts[name] = out + err
    return texts


def test_cli_outputs_on_the_demo_are_french(
        tmp_path: Path, demo_road_run: Path, capsys: pytest.CaptureFixture[str],
        demo_proxy_cli: subprocess.CompletedProcess[str]) -> None:
    texts = _run_outputs(tmp_path, capsys, demo_road_run)
    run = texts["run proxy"] = demo_proxy_cli.stdout
    # the summary: every threshold of the run, labels beside the codes, French numbers
    for minutes in (20, 30, 45):
        assert f"Zones blanches au-delà de {minutes} min — Médiation familiale : " in run
    assert "ZA Hautes-Brumes (fictif), ZB Val-d'Ombrelle (fictif)" in run
    assert "4 — très peu dense" in run and "fourchette" in run and " %" in run
    assert "Moteur : proxy (estimation à vol d'oiseau)" in run
    assert "Département ZA Hautes-Brumes (fictif), export public" in texts["export"]
    assert "export INTERNE" in texts["export interne"]
    assert "Nouveaux sites" in texts["sites"] and "Tableau écrit" in texts["sites"]
    assert_french({k: v.replace(str(tmp_path), "") for k, v in texts.items()})


def test_run_log_lines_are_french(demo_proxy_cli: subprocess.CompletedProcess[str]) -> None:
    log = demo_proxy_cli.stderr
    assert log.startswith("avertissement ")  # the level in French, by the CLI's log format
    assert_french({"journal de run": log})


@pytest.mark.parametrize("argv", [
    pytest.param(["validate"], id="validate-demo"),
    pytest.param(["validate", "--communes", "absent.csv"], id="validate-missing-file"),
    pytest.param(["run", "--communes", "absent.csv", "--out", "o"], id="run-missing-file"),
    pytest.param(["run", "--dept", "99", "--out", "o"], id="run-unknown-dept"),
    pytest.param(["export", "--dept", "ZA", "--formats", "pdf", "--run", "{run}", "--out",
                  "x"], id="export-unknown-format"),
    pytest.param(["export", "--dept", "99", "--run", "{run}"], id="export-unknown-dept"),
    pytest.param(["sites", "--dept", "ZA", "--type", "inconnu", "--run", "{run}"],
                 id="sites-unknown-type"),
    pytest.param(["rapport", "--dept", "99", "--run", "{run}"], id="rapport-unknown-dept"),
    pytest.param(["sites", "--dept", "99", "--type", "espace_rencontre", "--run", "{run}"],
                 id="sites-unknown-dept"),
    pytest.param(["export", "--dept", "ZA", "--run", "nulle_part"], id="export-no-run"),
    pytest.param(["suivi", "--waiting", "absent.csv", "--run", "{run}"],
                 id="suivi-missing-file"),
])
def test_bad_inputs_give_french_lines(argv: list[str], tmp_path: Path, demo_road_run: Path,
                                      capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(capsys, *(a.replace("{run}", str(demo_road_run)) for a in argv))
    assert "Traceback" not in err
    text = (out + err).replace(str(tmp_path), "").replace(str(REPO_ROOT), "")
    if argv[0] == "validate":  # the report on stdout, its verdict in the exit code
        assert code == (0 if len(argv) == 1 else EXIT_ERROR), out
    else:
        assert code == EXIT_ERROR and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "o").exists() and not (tmp_path / "x").exists()
    assert_french({" ".join(argv): text})


def test_export_and_sites_find_the_demo_run_from_any_directory(
        tmp_path: Path, demo_road_run: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert results.DEMO_RUN_DIR.is_absolute()  # not relative to the working directory
    assert results.DEMO_RUN_DIR == REPO_ROOT / "sorties" / "demo"
    elsewhere = tmp_path / "ailleurs"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(results, "DEMO_RUN_DIR", demo_road_run)
    code, out, err = _cli(capsys, "export", "--dept", "ZA", "--formats", "csv", "--out",
                          str(tmp_path / "exp"))
    assert code == 0, err
    assert "Département ZA" in out and (tmp_path / "exp" / "tables").is_dir()
    code, out, err = _cli(capsys, "sites", "--dept", "ZB", "--type", "espace_rencontre")
    assert code == 0, err
    assert "Nouveaux sites" in out and "département ZB" in out
    assert list(elsewhere.iterdir()) == []  # nothing written in the working directory


# --- the app: every page through AppTest --------------------------------------------------
#: Every page of the router, in the order of its menu.
PAGES = tuple(re.findall(r'st\.Page\("([^"]+)"', APP.read_text(encoding="utf-8")))
#: Proto fields that hold text a user reads.
TEXT_FIELDS = frozenset({"body", "label", "help", "placeholder", "options", "caption",
                         "delta", "alt", "default", "title", "text", "message",
                         "deltaDescription"})
#: Widgets whose empty placeholder shows Streamlit's English « Choose an option ».
CHOOSERS = frozenset({"Selectbox", "Multiselect", "MultiSelect"})


def _nodes(node: Any) -> Iterator[Any]:
    yield node
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for child in children.values():
            yield from _nodes(child)


def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)
    elif isinstance(value, str) and key in TEXT_FIELDS:
        yield key, value


def _chart_texts(spec: str) -> list[str]:
    """Return the titles of a Vega-Lite chart (axes, legends, tooltips)."""
    return [text for _, text in _strings(json.loads(spec))]


def _dataframe_texts(node: Any, config: str) -> list[str]:
    """Return the column headers a user sees, and the text cells."""
    frame: pd.DataFrame = node.value
    columns = json.loads(config) if config else {}
    order = list(getattr(node.proto, "column_order", [])) or [str(c) for c in frame.columns]
    shown = [(col, columns.get(col) or {}) for col in order]
    shown = [(col, conf) for col, conf in shown if not conf.get("hidden")]
    headers = [str(conf.get("label") or col) for col, conf in shown]
    raw = [h for h in headers if re.fullmatch(r"[a-z0-9]+(?:_[a-z0-9]+)+", h)]
    assert not raw, f"column headers shown as code names, not French titles: {raw}"
    # printf decimals (« %.1f ») write a decimal point whatever the browser's language
    formats = {str(conf.get("label") or col): str(conf.get("type_config", {}).get("format"))
               for col, conf in shown}
    dotted = {h: f for h, f in formats.items()
              if re.fullmatch(r"%[-+0 #]*\d*(?:\.\d*[1-9]\d*)?[fe]", f)}
    assert not dotted, f"decimal numbers written with a point: {dotted}"
    numeric = frame.select_dtypes("number")
    assert not np.isinf(numeric.to_numpy(dtype=float, na_value=np.nan)).any(), \
        "an infinite number in a table shown to the user"
    cells = [str(v) for c in frame.columns
             if c in order and not pd.api.types.is_numeric_dtype(frame[c])
             for v in frame[c].dropna().unique()[:200]]
    return headers + cells + _french_number_cells(node, [c for c, _ in shown])


#: A number as the app's tables write it: « 12 345 », « 1 234,5 », « −3 », « 12,5 % »
#: (narrow no-break spaces), or a year or row number without separator (« 2025 »).
FRENCH_CELL = re.compile(r"^\u2212?(?:\d{1,3}(?:\u202f\d{3})*|\d{1,4})(?:,\d+)?(?:\u202f%)?$")


def _french_number_cells(node: Any, shown: list[str]) -> list[str]:
    """Check the display text of every number shown in a table; return those texts.

    The app gives each number of a table its French text (a pandas Styler: the browser
    shows it whatever its language, and sorts by the number kept in the cell). Each text
    must be French and stand for the cell's number.
    """
    import pyarrow as pa

    frame: pd.DataFrame = node.value
    numeric = [c for c in shown if c in frame and pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    if not numeric:
        return []
    display_bytes = node.proto.arrow_data.styler.display_values
    assert display_bytes, f"numbers {numeric} shown without French display texts"
    display = pa.ipc.open_stream(display_bytes).read_all().to_pandas()
    texts: list[str] = []
    for col in numeric:
        for raw, text in zip(frame[col], display[col], strict=True):
            text = "" if text is None or (isinstance(text, float) and np.isnan(text)) \
                else str(text)
            if pd.isna(raw):
                assert text == "", f"{col}: missing number shown as « {text} »"
                continue
            assert FRENCH_CELL.match(text), f"{col}: « {text} » is not a French number"
            value = float(text.replace("\u202f%", "").replace("\u202f", "")
                          .replace(",", ".").replace("\u2212", "-"))
            expected = float(raw) * (100 if text.endswith("%") else 1)
            decimals = len(text.split(",")[1].split("\u202f")[0]) if "," in text else 0
            assert abs(value - expected) <= 0.5 * 10 ** -decimals + 1e-9, \
                f"{col}: « {text} » does not show {raw}"
            texts.append(text)
    return texts[:200]


def _page_texts(at: Any, page: str) -> dict[str, str]:
    """Return every text of the app as it stands, keyed by page, element and field."""
    from google.protobuf.json_format import MessageToDict

    texts: dict[str, str] = {}
    for i, node in enumerate(_nodes(at._tree)):
        proto = getattr(node, "proto", None)
        if proto is None:
            continue
        kind = type(node).__name__
        where = f"{page} #{i} {kind}"
        fields = MessageToDict(proto)
        if kind in CHOOSERS or proto.DESCRIPTOR.name in CHOOSERS:
            assert proto.placeholder.strip(), f"{where} « {fields.get('label')} »: no " \
                "placeholder (Streamlit would show « Choose an option »)"
        for n, (key, text) in enumerate(_strings(fields)):
            texts[f"{where} {key} {n}"] = text
        if "spec" in fields:
            texts[f"{where} graphique"] = " | ".join(_chart_texts(fields["spec"]))
            locale = json.loads(fields["spec"]).get("config", {}).get("locale", {})
            assert locale.get("number", {}).get("decimal") == ",", \
                f"{where}: chart numbers not in French"
            if '"temporal"' in fields["spec"]:  # Vega's default month names are English
                months = locale.get("time", {}).get("months", [])
                assert months[3:4] == ["avril"], f"{where}: chart dates not in French"
        if kind in ("Dataframe", "Table"):
            texts[f"{where} tableau"] = " | ".join(_dataframe_texts(node,
                                                                  fields.get("columns", "")))
        if kind == "Metric":
            texts[f"{where} valeur"] = proto.body
        if kind == "NumberInput":  # as the browser writes it (printf format, no locale)
            texts[f"{where} valeur"] = (proto.format or "%0.2f") % node.value
    return texts


def _app(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Return the app, run once on ``run_dir`` as the demo."""
    from streamlit.testing.v1 import AppTest

    from coverage.app import state

    monkeypatch.setattr(results, "DEMO_RUN_DIR", run_dir)
    monkeypatch.delenv(state.ENV_RUN_DIR, raising=False)
    monkeypatch.delenv(state.ENV_TILES_URL, raising=False)
    at = AppTest.from_file(str(APP), default_timeout=240)
    at.run()
    return at


def _walk_app(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    at = _app(run_dir, monkeypatch)
    texts: dict[str, str] = {}
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        texts |= _page_texts(at, Path(page).stem)
    # the combined view and another threshold on the map and white-zone pages
    at.selectbox(key="type_service").select_index(-1).run()
    at.selectbox(key="threshold").select_index(0).run()
    for page in PAGES:
        at.switch_page(page).run()
        texts |= _page_texts(at, f"{Path(page).stem} (vue combinée)")
    return texts


@pytest.mark.parametrize("engine", ["road", "proxy"])
def test_every_app_page_is_french(engine: str, demo_road_run: Path, demo_proxy_run: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = demo_road_run if engine == "road" else demo_proxy_run
    texts = _walk_app(run_dir, monkeypatch)
    assert len(texts) > 100  # the walk did see the pages
    tables = [v for k, v in texts.items() if k.endswith(" tableau")]
    assert any("\u202f" in v and "," in v for v in tables)  # French numbers were checked
    assert_french({k: v.replace(str(run_dir), "") for k, v in texts.items()})


def test_refused_services_file_is_french(demo_road_run: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(demo_road_run, monkeypatch)
    services = results.RunOutputs.load(demo_road_run).services.drop(columns="geometry")
    bad = pd.DataFrame(services).head(3).astype(object)
    bad.loc[bad.index[1], "lat"] = "pas un nombre"
    bad.loc[bad.index[2], "type_service"] = "crèche"
    at.file_uploader(key="services_upload").set_value(
        ("services_faux.csv", bad.to_csv(index=False).encode(), "text/csv")).run()
    assert not at.exception
    texts = _page_texts(at, "fichier refusé")
    assert any("refusé" in t for t in texts.values())
    assert_french(texts)
