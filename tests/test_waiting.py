"""Waiting lists: loader (label mapping, validation) and indicators against hand-computed values."""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage.errors import DuplicateIdError, InputError, MissingColumnError
from coverage.export.figures import waiting_charts_png
from coverage.io.waiting import (
    WAITING_RETURNS,
    load_waiting,
    match_column,
    normalise_dep,
    normalise_label,
    normalise_type_service,
)
from coverage.schemas import OUTPUT_CONTRACTS, table_schema
from coverage.settings import SERVICE_TYPES, Settings
from coverage.waiting import (
    LISTES_ATTENTE_DEPARTEMENTS,
    REFERENCE_ER_PART_AVEC_LISTE_2018,
    REFERENCE_SOURCE_URL,
    mask_public,
    population_by_departement,
    ranking,
    series_data,
    tension_table,
    waiting_indicators,
)

POP = pd.Series({"15": 200_000, "12": 500_000, "48": 80_000})


@pytest.fixture(scope="module")
def _loaded_rows(tests_data: Path) -> pd.DataFrame:
    """The fixture file read once per module (the tests get copies)."""
    return load_waiting(tests_data / "waiting_services.csv").data


@pytest.fixture(scope="module")
def _computed_indicators(_loaded_rows: pd.DataFrame) -> pd.DataFrame:
    return waiting_indicators(_loaded_rows.copy(), POP)


@pytest.fixture
def services_rows(_loaded_rows: pd.DataFrame) -> pd.DataFrame:
    return _loaded_rows.copy()


@pytest.fixture
def indicators(_computed_indicators: pd.DataFrame) -> pd.DataFrame:
    return _computed_indicators.copy()


def _row(df: pd.DataFrame, dep: str, typ: str, year: int) -> pd.Series:
    sel = df[(df["code_dep"] == dep) & (df["type_service"] == typ) & (df["annee"] == year)]
    assert len(sel) == 1
    return sel.iloc[0]


# --- label mapping ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Nb familles en liste d'attente au 31/12", "familles_en_attente"),
        ("familles_en_attente", "familles_en_attente"),
        ("FAMILLES EN ATTENTE", "familles_en_attente"),
        ("Nombre de familles en liste d’attente au 31 décembre 2023", "familles_en_attente"),
        ("  Familles  sur liste d'attente ", "familles_en_attente"),
        ("Délai moyen (jours)", "delai_moyen_jours"),
        ("delai_moyen_jours", "delai_moyen_jours"),
        ("Delai moyen d'attente en jours", "delai_moyen_jours"),
        ("Délai d'attente moyen (en jours)", "delai_moyen_jours"),
        ("Département", "code_dep"),
        ("DEPARTEMENT", "code_dep"),
        ("code_dep", "code_dep"),
        ("N° département", "code_dep"),
        ("Année", "annee"),
        ("ANNEE", "annee"),
        ("Exercice", "annee"),
        ("Type de service", "type_service"),
        ("type-service", "type_service"),
        ("Familles reçues", "familles_recues"),
        ("familles accueillies", "familles_recues"),
        ("Mesures ordonnées par le juge", "mesures_judiciaires"),
        ("Demandes spontanées", "demandes_spontanees"),
        ("Entretiens d'information préalable", "entretiens_information"),
        ("Médiations engagées", "mediations_engagees"),
        ("Médiations terminées", "mediations_terminees"),
        ("mediations", "mediations"),
        ("Identifiant du service", "service_id"),
        ("Nom du service", "nom_service"),
        ("Couleur préférée", None),
    ],
)
def test_label_mapping(label: str, expected: str | None) -> None:
    assert match_column(label) == expected


def test_normalise_label_rules() -> None:
    assert normalise_label("Nb familles en liste d'attente au 31/12") == "familles liste attente"
    assert normalise_label("Délai moyen (jours)") == "delai moyen"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Espace de rencontre", "espace_rencontre"), ("ESPACES-RENCONTRE", "espace_rencontre"),
     ("ER", "espace_rencontre"), ("espace_rencontre", "espace_rencontre"),
     ("Médiation familiale", "mediation_familiale"), ("mf", "mediation_familiale"),
     ("MEDIATION", "mediation_familiale"), ("crèche", None), ("", None)],
)
def test_type_service_variants(value: str, expected: str | None) -> None:
    assert normalise_type_service(value, SERVICE_TYPES) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", "01"), ("01", "01"), ("1.0", "01"), ("2a", "2A"), ("2B", "2B"), ("971", "971"),
     ("15 - Cantal", "15"), ("15 Cantal", "15"), ("ZA", "ZA"), ("Cantal", None), ("", None)],
)
def test_departement_codes(value: str, expected: str | None) -> None:
    assert normalise_dep(value) == expected


# --- loader ------------------------------------------------------------------------------


def test_load_services_file(services_rows: pd.DataFrame) -> None:
    assert list(services_rows.columns) == WAITING_RETURNS.columns
    assert len(services_rows) == 8
    assert set(services_rows["type_service"]) == {"espace_rencontre", "mediation_familiale"}
    assert services_rows["familles_en_attente"].dtype == "Int64"
    assert services_rows["familles_en_attente"].isna().sum() == 1  # empty = not reported
    assert services_rows.loc[0, "service_id"] == "ER15A"
    assert not services_rows["fictif"].any()


def test_load_cp1252_semicolon_decimal_comma(tests_data: Path) -> None:
    data = load_waiting(tests_data / "waiting_departements_cp1252.csv").data
    assert data["delai_moyen_jours"].tolist() == [12.5, 20.0, 20.0]
    assert data["entretiens_information"].tolist() == [90, 1100, 100]  # "1 100"
    assert data["mediations_terminees"].tolist() == [20, 25, 25]
    assert data["service_id"].isna().all()
    assert set(data["type_service"]) == {"mediation_familiale"}


def test_load_xlsx(tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Département", "Type de service", "Année", "Familles en attente",
               "Délai moyen (jours)"])
    ws.append([1, "Espace de rencontre", 2023, 7, 45.5])
    ws.append(["2A", "MF", datetime.datetime(2023, 12, 31), 0, None])
    path = tmp_path / "retours.xlsx"
    wb.save(path)
    data = load_waiting(path).data
    assert data["code_dep"].tolist() == ["01", "2A"]
    assert data["annee"].tolist() == [2023, 2023]
    assert data["familles_en_attente"].tolist() == [7, 0]
    assert data.loc[0, "delai_moyen_jours"] == 45.5
    assert math.isnan(data.loc[1, "delai_moyen_jours"])


def test_bad_file_names_rows_and_columns(tests_data: Path) -> None:
    path = tests_data / "waiting_bad.csv"
    with pytest.raises(InputError) as exc:
        load_waiting(path)
    found = {(p.row, p.column) for p in exc.value.problems}
    assert (2, "service_id") in found            # duplicate of row 1 (same service)
    assert (3, "familles_en_attente") in found   # negative count
    assert (4, "delai_moyen_jours") in found     # "six"
    assert (5, "dep") in found                   # unknown département 99
    assert (5, "familles_en_attente") in found   # 2.5 families
    assert (6, "type_service") in found          # crèche
    assert (6, "annee") in found                 # 1990 out of range
    assert all(p.file == str(path) for p in exc.value.problems)
    text = str(exc.value)
    assert "waiting_bad.csv, ligne 5, colonne « dep »" in text
    assert "« 99 »" in text


def test_duplicates_and_mixed_levels(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("code_dep,type_service,annee,familles_en_attente\n"
                    "15,ER,2023,4\n15,Espace de rencontre,2023,5\n", encoding="utf-8")
    with pytest.raises(DuplicateIdError) as exc:
        load_waiting(path)
    assert [(p.row, "comme la ligne 1" in p.expected) for p in exc.value.problems] == [(2, True)]

    path.write_text("code_dep,type_service,annee,service_id,familles_en_attente\n"
                    "15,ER,2023,A,4\n15,ER,2023,,5\n", encoding="utf-8")
    with pytest.raises(DuplicateIdError) as exc:
        load_waiting(path)
    assert exc.value.problems[0].row == 2
    expected = exc.value.problems[0].expected
    assert "soit des lignes par service, soit une ligne de département" in expected


def test_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("Département,Nb familles en attente\n15,3\n", encoding="utf-8")
    with pytest.raises(MissingColumnError) as exc:
        load_waiting(path)
    assert {p.column for p in exc.value.problems} == {"type_service", "annee"}


def test_unknown_columns_are_warned_and_fictional_codes_need_communes(tmp_path: Path) -> None:
    path = tmp_path / "z.csv"
    path.write_text("code_dep,type_service,annee,familles_en_attente,remarque\n"
                    "ZA,ER,2023,4,rien\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_waiting(path)
    assert exc.value.problems[0].column == "code_dep"
    communes = pd.DataFrame({"code_dep": ["ZA"], "population": [100]})
    loaded = load_waiting(path, communes=communes)
    assert loaded.data["fictif"].all()
    assert any("remarque" in w for w in loaded.warnings)


def test_demo_waiting_lists_load_and_are_fictional() -> None:
    from coverage.demo import demo_paths

    loaded = load_waiting()
    assert loaded.path == str(demo_paths().waiting)
    assert set(loaded.data["code_dep"]) == {"ZA", "ZB"}
    assert loaded.data["fictif"].all()
    assert loaded.data["annee"].nunique() == 3
    assert loaded.warnings == []


# --- indicators ---------------------------------------------------------------------------


def test_contract_registered_with_units_and_titles(indicators: pd.DataFrame) -> None:
    assert OUTPUT_CONTRACTS["listes_attente_departements"] is LISTES_ATTENTE_DEPARTEMENTS
    assert list(indicators.columns) == LISTES_ATTENTE_DEPARTEMENTS.columns
    schema = table_schema(LISTES_ATTENTE_DEPARTEMENTS)
    assert all(f["title"] for f in schema["fields"])
    units = {f["name"]: f.get("unit") for f in schema["fields"]}
    assert units["familles_en_attente_pour_100k"] == "familles pour 100 000 habitants"
    assert units["delai_moyen_jours"] == "jours"


def test_aggregation_sums_and_weighted_delay(indicators: pd.DataFrame) -> None:
    r = _row(indicators, "15", "espace_rencontre", 2022)
    assert r["familles_en_attente"] == 4 + 0
    assert r["delai_moyen_jours"] == pytest.approx((4 * 30 + 0 * 10) / 4)
    assert (r["services"], r["services_avec_liste"]) == (2, 1)
    assert r["part_services_avec_liste"] == pytest.approx(0.5)
    assert (r["familles_recues"], r["mesures_judiciaires"], r["demandes_spontanees"]) == (
        20 + 10, 15 + 8, 5 + 2)

    r = _row(indicators, "15", "espace_rencontre", 2023)
    assert r["familles_en_attente"] == 6 + 2
    assert r["delai_moyen_jours"] == pytest.approx((6 * 40 + 2 * 70) / 8)

    # ER12B did not report its waiting list: not counted, not a weight, not a declarant
    r = _row(indicators, "12", "espace_rencontre", 2023)
    assert r["familles_en_attente"] == 10
    assert r["delai_moyen_jours"] == pytest.approx(90.0)
    assert (r["services"], r["services_avec_liste"]) == (2, 1)
    assert r["part_services_avec_liste"] == pytest.approx(1 / 1)
    assert r["familles_recues"] == 8
    assert pd.isna(r["mesures_judiciaires"])  # nothing reported: missing, not 0

    # nobody waiting: the plain mean of the delays
    r = _row(indicators, "48", "mediation_familiale", 2023)
    assert r["familles_en_attente"] == 0
    assert r["delai_moyen_jours"] == pytest.approx((20 + 40) / 2)
    assert r["part_services_avec_liste"] == 0
    assert math.isnan(r["part_reference_nationale"])


def test_rates_and_reference(indicators: pd.DataFrame) -> None:
    r = _row(indicators, "15", "espace_rencontre", 2023)
    assert r["population"] == 200_000
    assert r["familles_en_attente_pour_100k"] == pytest.approx(8 / 200_000 * 100_000)
    assert r["part_reference_nationale"] == REFERENCE_ER_PART_AVEC_LISTE_2018
    r = _row(indicators, "12", "espace_rencontre", 2023)
    assert r["familles_en_attente_pour_100k"] == pytest.approx(10 / 500_000 * 100_000)


def test_change_against_previous_year(indicators: pd.DataFrame, tests_data: Path) -> None:
    r = _row(indicators, "15", "espace_rencontre", 2023)
    assert r["familles_en_attente_variation"] == 8 - 4
    assert r["familles_en_attente_variation_pct"] == pytest.approx(100 * (8 - 4) / 4)
    assert r["variation_delai_jours"] == pytest.approx(47.5 - 30)
    first = _row(indicators, "15", "espace_rencontre", 2022)
    assert math.isnan(first["familles_en_attente_variation"])
    assert math.isnan(first["familles_en_attente_variation_pct"])

    dep = waiting_indicators(load_waiting(tests_data / "waiting_departements_cp1252.csv").data,
                             POP)
    assert dep["services"].isna().all()  # département-level returns
    assert _row(dep, "15", "mediation_familiale", 2022)[
        "familles_en_attente_variation_pct"] == pytest.approx(100 * (5 - 3) / 3)
    gap = _row(dep, "15", "mediation_familiale", 2024)  # 2023 missing: no previous year
    assert math.isnan(gap["familles_en_attente_variation"])


def test_previous_year_zero_gives_nan_percent() -> None:
    rows = pd.DataFrame({
        "code_dep": ["15", "15"], "type_service": ["espace_rencontre"] * 2,
        "annee": [2022, 2023], "familles_en_attente": pd.array([0, 3], dtype="Int64"),
        "delai_moyen_jours": [np.nan, 20.0], "service_id": [None, None],
    })
    ind = waiting_indicators(rows, POP)
    assert ind.loc[1, "familles_en_attente_variation"] == 3
    assert math.isnan(ind.loc[1, "familles_en_attente_variation_pct"])


def test_population_from_communes() -> None:
    communes = pd.DataFrame({"code_dep": ["15", "15", "12"], "population": [100, 250, 40]})
    pop = population_by_departement(communes)
    assert pop.to_dict() == {"12": 40, "15": 350}
    national = population_by_departement(None)
    assert national["15"] > 100_000


def test_ranking_and_series(indicators: pd.DataFrame) -> None:
    r = ranking(indicators, type_service="espace_rencontre", annee=2023)
    assert r["code_dep"].tolist() == ["15", "12"]  # 4.0 > 2.0 per 100,000
    assert r["rang"].tolist() == [1, 2]
    assert (r["sur"] == 2).all()
    s = series_data(indicators, "15", "espace_rencontre")
    assert s["annee"].tolist() == [2022, 2023]
    assert s["familles_en_attente"].tolist() == [4, 8]


def _couverture() -> pd.DataFrame:
    return pd.DataFrame({
        "code_dep": ["15", "12", "15", "12"],
        "type_service": ["espace_rencontre"] * 4,
        "seuil_minutes": [30.0, 30.0, 45.0, 45.0],
        "population": [200_000, 500_000, 200_000, 500_000],
        "population_zone_blanche": [20_000, 150_000, 5_000, 50_000],
    })


def test_tension_table(indicators: pd.DataFrame) -> None:
    t = tension_table(indicators, _couverture(), type_service="espace_rencontre", seuil=30)
    assert t["code_dep"].tolist() == ["12", "15"]
    assert t["annee"].tolist() == [2023, 2023]  # latest year of each
    assert t["part_population_zone_blanche"].tolist() == pytest.approx(
        [150_000 / 500_000, 20_000 / 200_000])
    assert t["familles_en_attente_pour_100k"].tolist() == pytest.approx([2.0, 4.0])
    assert t["quadrant"].tolist() == ["attente faible, zone blanche étendue",
                                      "attente forte, zone blanche réduite"]
    t22 = tension_table(indicators, _couverture(), type_service="espace_rencontre", seuil=45,
                        annee=2022)
    assert t22["code_dep"].tolist() == ["15"]
    assert t22["part_population_zone_blanche"].iloc[0] == pytest.approx(5_000 / 200_000)
    with pytest.raises(ValueError, match="thresholds of the run: 30, 45"):
        tension_table(indicators, _couverture(), type_service="espace_rencontre", seuil=20)


def test_masking_small_counts(indicators: pd.DataFrame) -> None:
    masked = mask_public(indicators, Settings(secrecy_threshold=5))
    assert list(masked.columns) == list(indicators.columns)
    r = _row(masked, "15", "espace_rencontre", 2022)  # 4 families < 5
    assert pd.isna(r["familles_en_attente"])
    assert pd.isna(r["familles_en_attente_pour_100k"])
    assert pd.isna(r["delai_moyen_jours"])
    assert pd.isna(r["services_avec_liste"])
    r = _row(masked, "15", "espace_rencontre", 2023)  # 8 kept, but 2022 was masked
    assert r["familles_en_attente"] == 8
    assert r["familles_en_attente_pour_100k"] == pytest.approx(4.0)
    assert pd.isna(r["familles_en_attente_variation"])
    assert pd.isna(r["variation_delai_jours"])
    r = _row(masked, "12", "espace_rencontre", 2023)
    assert r["familles_en_attente"] == 10
    assert r["familles_recues"] == 8
    r = _row(masked, "48", "mediation_familiale", 2023)  # zero is masked too (exports' rule)
    assert pd.isna(r["familles_en_attente"])
    assert pd.isna(r["delai_moyen_jours"])
    # unmasked input untouched
    assert _row(indicators, "15", "espace_rencontre", 2022)["familles_en_attente"] == 4
    loose = mask_public(indicators, Settings(secrecy_threshold=1))
    assert _row(loose, "15", "espace_rencontre", 2022)["familles_en_attente"] == 4


def test_charts_png(indicators: pd.DataFrame, tmp_path: Path) -> None:
    paths = waiting_charts_png(indicators, tmp_path / "png", code_dep="15",
                               couverture=_couverture(), seuil=30)
    names = sorted(p.name for p in paths)
    assert "listes_attente_15_espace_rencontre.png" in names
    assert "listes_attente_classement_espace_rencontre_2023.png" in names
    assert "listes_attente_tension_espace_rencontre_30min.png" in names
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in (tmp_path / "png").iterdir() if p.name.startswith(".")]


@pytest.mark.shared
def test_reference_matches_published_figure(shared_data: Path) -> None:
    figures = pd.read_csv(shared_data / "calibration" / "chiffres_publics.csv", dtype=str)
    row = figures[figures["indicateur"] == "er_avec_liste_attente"].iloc[0]
    assert float(row["valeur"]) / 100 == REFERENCE_ER_PART_AVEC_LISTE_2018
    assert row["source_url"] == REFERENCE_SOURCE_URL
    assert row["annee"].startswith("2018")


def test_docs_list_every_alias_and_output_column() -> None:
    from coverage.io.waiting import COLUMN_ALIASES

    doc = (Path(__file__).resolve().parents[1] / "docs" / "listes_attente.md").read_text(
        encoding="utf-8")
    for column, aliases in COLUMN_ALIASES.items():
        assert f"`{column}`" in doc
        for alias in aliases:
            assert f"« {alias} »" in doc, alias
    for name in LISTES_ATTENTE_DEPARTEMENTS.columns:
        assert f"| `{name}` |" in doc, name


def test_xlsx_title_rows_above_the_headings(tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Retours d'activité des espaces de rencontre 2023"])
    ws.append(["Département", "Type de service", "Année", "Familles en attente"])
    ws.append(["15", "ER", 2023, 3])
    ws.append(["12", "ER", 2023, -2])
    path = tmp_path / "titre.xlsx"
    wb.save(path)
    with pytest.raises(InputError) as exc:
        load_waiting(path)
    assert [(p.row, p.column) for p in exc.value.problems] == [(2, "Familles en attente")]
    ws.delete_rows(4)
    wb.save(path)
    loaded = load_waiting(path)
    assert loaded.data["familles_en_attente"].tolist() == [3]
    assert any("en-têtes lus sur la ligne de données 1" in w for w in loaded.warnings)


def test_demo_figures_are_labelled_fictional(indicators: pd.DataFrame) -> None:
    from coverage.export.figures import figure_ranking, figure_series

    demo = waiting_indicators(load_waiting().data, pd.Series({"ZA": 10_000, "ZB": 20_000}))
    fig = figure_series(demo, "ZA", "espace_rencontre")
    assert any("FICTIVES" in t.get_text() for t in fig.texts)
    fig = figure_ranking(demo, type_service="espace_rencontre", annee=2025)
    assert any("FICTIVES" in t.get_text() for t in fig.texts)
    real = figure_series(indicators, "15", "espace_rencontre")
    assert not any("FICTIVES" in t.get_text() for t in real.texts)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.one_of(st.none(), st.floats(0, 400))),
                min_size=1, max_size=6))
def test_aggregation_properties(services: list[tuple[int, float | None]]) -> None:
    """Sum of families; weighted delay within the services' delays (hypothesis)."""
    rows = pd.DataFrame({
        "code_dep": "15", "type_service": "espace_rencontre", "annee": 2023,
        "service_id": [f"S{i}" for i in range(len(services))],
        "familles_en_attente": pd.array([f for f, _ in services], dtype="Int64"),
        "delai_moyen_jours": [np.nan if d is None else d for _, d in services],
    })
    r = waiting_indicators(rows, POP).iloc[0]
    assert r["familles_en_attente"] == sum(f for f, _ in services)
    assert r["services_avec_liste"] == sum(f > 0 for f, _ in services)
    delays = [d for _, d in services if d is not None]
    if not delays:
        assert math.isnan(r["delai_moyen_jours"])
    else:
        assert min(delays) - 1e-9 <= r["delai_moyen_jours"] <= max(delays) + 1e-9
        weights = [(f, d) for f, d in services if d is not None and f > 0]
        if weights:
            expected = sum(f * d for f, d in weights) / sum(f for f, _ in weights)
            assert r["delai_moyen_jours"] == pytest.approx(expected)


def test_waiting_is_pure_pandas_and_its_contract_is_declared() -> None:
    """The stage draws nothing, and its contract exists before any stage is imported."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from coverage.schemas import OUTPUT_CONTRACTS\n"
            "assert 'listes_attente_departements' in OUTPUT_CONTRACTS\n"
            "assert 'coverage.waiting' not in sys.modules\n"
            "import coverage.waiting\n"
            "assert not [m for m in sys.modules if m.startswith('matplotlib')]\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert OUTPUT_CONTRACTS["listes_attente_departements"] is LISTES_ATTENTE_DEPARTEMENTS
