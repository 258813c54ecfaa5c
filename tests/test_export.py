"""Exports of a département: tables, French CSV, XLSX, GeoPackage/GeoParquet, PNG, secrecy.

The run used here is built in memory from a tiny hand-written territory (two fictional
départements ZA and ZB, 12 square communes, 3 services, hand-chosen minutes) and the
library's own white-zone functions, so every expected figure can be checked by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from coverage import export, results, secrecy
from coverage.cog import normalise_dept
from coverage.errors import CoverageError
from coverage.export import (
    METHOD_SHEET,
    WAITING_TABLE,
    departement,
    export_departement,
    flag_column,
    parse_formats,
)
from coverage.labels import FICTIONAL_TITLE
from coverage.results import RunOutputs
from coverage.schemas import OUTPUT_CONTRACTS
from coverage.settings import NO_SERVICE, Settings
from coverage.waiting import waiting_indicators
from coverage.whitezones import access_table, coverage_tables, white_zones

THRESHOLDS = [20.0, 30.0, 45.0]
MF, ER = "mediation_familiale", "espace_rencontre"

# code, dep, population, densite, epci, minutes MF, minutes ER (NaN = unreachable)
COMMUNES = [
    ("ZA001", "ZA", 12000, 2, "E1", 5.0, 12.0),
    ("ZA002", "ZA", 800, 3, "E1", 18.0, 25.0),
    ("ZA003", "ZA", 300, 4, "E1", 27.0, 41.0),
    ("ZA004", "ZA", 150, 4, "E2", 33.0, 52.0),
    ("ZA005", "ZA", 90, 4, "E2", 47.0, np.nan),
    ("ZA006", "ZA", 2500, 3, "E2", 22.0, 19.0),
    ("ZA007", "ZA", 60, 4, "E2", np.nan, np.nan),
    ("ZA008", "ZA", 700, 3, "E1", 14.0, 31.0),
    ("ZA009", "ZA", 400, 4, "E1", 29.5, 30.0),
    ("ZB001", "ZB", 5000, 2, "E2", 8.0, 9.0),
    ("ZB002", "ZB", 200, 4, "E3", 36.0, 20.0),
    ("ZB003", "ZB", 100, 4, "E3", 50.0, 44.0),
]

#: Exported acces_communes of this proxy run (hand-made, without ranges): the road distance
#: and the empty range columns are left out (coverage.whitezones.without_empty_engine_columns)
_PROXY_ACCES_COLUMNS = [c for c in OUTPUT_CONTRACTS["acces_communes"].columns
                        if c not in ("distance_km", "minutes_min", "minutes_max")]


def make_communes() -> gpd.GeoDataFrame:
    rows, geoms = [], []
    for i, (code, dep, pop, dens, epci, _mf, _er) in enumerate(COMMUNES):
        x0, y0 = 2.0 + 0.05 * (i % 4), 46.0 + 0.05 * (i // 4)
        geoms.append(box(x0, y0, x0 + 0.05, y0 + 0.05))
        rows.append({
            "code_insee": code, "nom": f"Commune fictive {code}", "code_dep": dep,
            "code_reg": "ZR", "population": pop, "densite": dens, "rural": dens >= 3,
            "lon": x0 + 0.025, "lat": y0 + 0.025, "code_epci": epci,
            "nom_epci": f"EPCI fictif {epci}", "fictif": True,
        })
    return gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4326")


def make_services() -> gpd.GeoDataFrame:
    rows = [
        ("S1", MF, "ZA001", "ZA", 2.02, 46.02),
        ("S2", ER, "ZA006", "ZA", 2.07, 46.07),
        ("S3", MF, "ZB001", "ZB", 2.07, 46.12),  # nearest MF of ZA commune ZA009
    ]
    df = pd.DataFrame(rows, columns=["service_id", "type_service", "code_insee", "code_dep",
                                     "lon", "lat"])
    df["nom"] = "Service fictif " + df["service_id"]
    df["organisme"] = "Association fictive"
    df["source"] = "démonstration fictive"
    return gpd.GeoDataFrame(df, geometry=[Point(x, y) for x, y in zip(df.lon, df.lat,
                                                                        strict=True)],
                            crs="EPSG:4326")


def make_nearest() -> pd.DataFrame:
    rows = []
    for code, _dep, _pop, _dens, _epci, mf, er in COMMUNES:
        for t, m in ((MF, mf), (ER, er)):
            sid = None if np.isnan(m) else ("S3" if (t == MF and code in ("ZA009", "ZB001"))
                                            else "S1" if t == MF else "S2")
            rows.append({"code_insee": code, "type_service": t, "minutes": m,
                         "service_id": sid, "distance_km": m * 0.9, "moteur": "proxy"})
    return pd.DataFrame(rows)


#: Waiting-list returns by département (hand-chosen counts around the secrecy threshold 5),
#: turned into the ``listes_attente_departements`` table by the waiting-list stage.
WAITING_RETURNS = pd.DataFrame({
    "code_dep": ["ZA", "ZA", "ZA", "ZA", "ZA", "ZB"],
    "type_service": [ER, ER, ER, MF, MF, ER],
    "annee": [2023, 2024, 2025, 2024, 2025, 2025],
    "familles_en_attente": [3, 12, 0, 5, np.nan, 2],
    "delai_moyen_jours": [40.0, 65.0, np.nan, 30.0, np.nan, 20.0],
    "service_id": [None] * 6,
})


def make_waiting() -> pd.DataFrame:
    pop = pd.Series({d: sum(c[2] for c in COMMUNES if c[1] == d) for d in ("ZA", "ZB")})
    return waiting_indicators(WAITING_RETURNS, pop)


def make_run(tmp_path: Path, *, waiting: bool = True, no_epci: tuple[str, ...] = (),
             fictif: bool = True) -> RunOutputs:
    communes = make_communes()
    communes.loc[communes["code_insee"].isin(no_epci), ["code_epci", "nom_epci"]] = None
    access = access_table(communes, make_nearest())
    tables = {"acces_communes": access, "zones_blanches": white_zones(access, THRESHOLDS)}
    tables.update(coverage_tables(access, communes, THRESHOLDS))
    if waiting:
        tables[WAITING_TABLE] = make_waiting()
    manifest = {
        "engine": {"name": "proxy", "detour_factor": 1.3, "speed_kmh_by_density":
                   {"1": 30, "2": 45, "3": 60, "4": 65}},
        "fictif": fictif, "fictional_label": "Brumeval — territoire FICTIF" if fictif else None,
        "thresholds_min": THRESHOLDS, "depts": ["ZA", "ZB"],
        "created": "2026-11-26T15:00:00Z",
    }
    return RunOutputs(run_dir=tmp_path / "run", manifest=manifest, tables=tables,
                      communes=communes, services=make_services())


def method_sheet(wb: Any) -> dict[str, str]:
    """The « Sources et méthode » sheet as {rubrique: valeur}."""
    return {str(r[0].value): str(r[1].value) for r in wb[METHOD_SHEET].iter_rows(min_row=2)}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunOutputs:
    """The hand-written run, shared (read-only) by the tests of this module."""
    return make_run(tmp_path_factory.mktemp("run"))


# --- secrecy -----------------------------------------------------------------------------
def test_secret_columns_of_waiting_table() -> None:
    counts, derived = secrecy.secret_columns(make_waiting(),
                                             OUTPUT_CONTRACTS[WAITING_TABLE])
    assert counts[0] == "familles_en_attente"
    assert {"mediations_engagees", "mesures_judiciaires"} <= set(counts)
    assert "population" not in counts and "services" not in counts
    assert set(derived["familles_en_attente"]) == {
        "delai_moyen_jours", "familles_en_attente_pour_100k", "familles_en_attente_variation",
        "familles_en_attente_variation_pct"}


# --- formats and errors ------------------------------------------------------------------
def test_parse_formats() -> None:
    assert parse_formats("csv,xlsx") == ("csv", "xlsx")
    assert parse_formats(" CSV-FR , png,csv_fr") == ("csv_fr", "png")
    assert parse_formats(["gpkg"]) == ("gpkg",)
    assert parse_formats("all") == export.EXPORT_FORMATS
    with pytest.raises(CoverageError, match=r"pdf.*csv, csv_fr, xlsx, gpkg, parquet, png"):
        parse_formats("csv,pdf")
    with pytest.raises(CoverageError, match="aucun format d'export"):
        parse_formats(" , ")


def test_unknown_departement_lists_those_of_the_run(run: RunOutputs, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    with pytest.raises(CoverageError, match=r"« 15 ».*ZA, ZB"):
        export_departement(run, "15", out_dir=out)
    assert not out.exists()
    assert not list(tmp_path.glob(".export-*"))


def test_map_of_a_missing_flag_is_a_clear_error(run: RunOutputs, tmp_path: Path) -> None:
    tables = export.departement_tables(run, "ZA")
    communes = export.commune_layer(run, "ZA", tables)
    services = export.service_layer(run, "ZA", tables)
    options = export.MapOptions(dept="ZA", thresholds=THRESHOLDS, seuil=25.0, engine="road",
                                fictif=True, source="Source : test.")
    with pytest.raises(CoverageError, match="zone blanche zb_aucun_service_25"):
        export.render_png_map(communes, services, tmp_path / "carte.png", options)
    assert not (tmp_path / "carte.png").exists()


def test_failure_leaves_no_partial_output(run: RunOutputs, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(departement, "render_png_map", boom)
    out = tmp_path / "exp"
    with pytest.raises(RuntimeError, match="disk on fire"):
        export_departement(run, "ZA", out_dir=out)
    assert not out.exists() or not any(out.rglob("*"))
    assert not list(tmp_path.glob(".export-*"))


def test_unwritable_folder_is_a_clear_error(run: RunOutputs, tmp_path: Path) -> None:
    from coverage.errors import OutputError

    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(OutputError, match="impossible d'écrire l'export du département ZA"):
        export_departement(run, "ZA", formats=["csv"], out_dir=tmp_path / "a_file" / "exp")


def test_departement_code_is_normalised(run: RunOutputs) -> None:
    assert results.check_departement(run, " za ") == "ZA"
    assert normalise_dept("1") == "01" and normalise_dept("2a") == "2A"


# --- tables ------------------------------------------------------------------------------
def test_csv_tables_are_the_departement_s_with_schemas(run: RunOutputs, tmp_path: Path) -> None:
    files = export_departement(run, "ZA", formats=["csv"], out_dir=tmp_path / "exp")
    names = {p.name for p in files}
    for table in ("couverture_departements", "acces_communes", "zones_blanches",
                  "couverture_epci_departement", "couverture_densite", WAITING_TABLE):
        assert f"{table}.csv" in names and f"{table}.schema.json" in names
    acces = pd.read_csv(tmp_path / "exp/tables/acces_communes.csv", dtype={"code_insee": str})
    assert set(acces["code_dep"]) == {"ZA"}
    assert len(acces) == 9 * 2
    assert list(acces.columns) == _PROXY_ACCES_COLUMNS
    schema = json.loads((tmp_path / "exp/tables/acces_communes.schema.json").read_text())
    assert [f["name"] for f in schema["fields"]] == list(acces.columns)
    zb = pd.read_csv(tmp_path / "exp/tables/zones_blanches.csv")
    expected_zb = run.tables["zones_blanches"].query("code_dep == 'ZA'")
    assert len(zb) == len(expected_zb) > 0
    dep = pd.read_csv(tmp_path / "exp/tables/couverture_departements.csv")
    assert set(dep["code_dep"]) == {"ZA"}


def test_epci_lines_are_the_departement_s_communes_whole_epci_beside(run: RunOutputs) -> None:
    tables = export.departement_tables(run, "ZA")
    epci = tables["couverture_epci_departement"]
    assert set(epci["code_epci"]) == {"E1", "E2"}
    assert set(epci["code_dep"]) == {"ZA"}
    # E2 straddles ZA and ZB: the line holds its ZA communes, the whole EPCI is beside
    row = epci.query("code_epci == 'E2' and type_service == @MF and seuil_minutes == 30")
    assert row["population"].item() == sum(c[2] for c in COMMUNES
                                           if c[4] == "E2" and c[1] == "ZA")
    assert row["population_epci"].item() == sum(c[2] for c in COMMUNES if c[4] == "E2")
    white_za = sum(c[2] for c in COMMUNES if c[4] == "E2" and c[1] == "ZA"
                   and not c[5] <= 30)  # NaN <= 30 is False: unreachable is white
    white_all = sum(c[2] for c in COMMUNES if c[4] == "E2" and not c[5] <= 30)
    assert row["population_zone_blanche"].item() == white_za
    assert row["population_zone_blanche_epci"].item() == white_all


def test_communes_outside_any_epci_are_counted_for_the_departement(tmp_path: Path) -> None:
    from coverage.whitezones import NO_EPCI_CODE

    run = make_run(tmp_path, no_epci=("ZA007", "ZB003"))
    epci = export.departement_tables(run, "ZA")["couverture_epci_departement"]
    none = epci[epci["code_epci"] == NO_EPCI_CODE]
    assert len(none) == 3 * len(THRESHOLDS)  # two types + the combined view
    assert set(none["population"]) == {60}  # ZA007 only, not ZB003
    assert none["population_epci"].isna().all()  # not an EPCI: no whole figure beside
    assert set(epci["code_epci"]) == {"E1", "E2", NO_EPCI_CODE}


def test_density_recomputed_on_the_departement(run: RunOutputs) -> None:
    dens = export.departement_tables(run, "ZA")["couverture_densite"]
    # brute force from the hand-written table: population covered within 30 min, by density
    for level in (2, 3, 4):
        for t in (MF, ER):
            rows = [c for c in COMMUNES if c[1] == "ZA" and c[3] == level]
            pop = sum(c[2] for c in rows)
            # NaN <= 30 is False: unreachable communes are not covered
            covered = sum(c[2] for c in rows if (c[5] if t == MF else c[6]) <= 30)
            got = dens[(dens["densite"] == level) & (dens["type_service"] == t)
                       & (dens["seuil_minutes"] == 30)]
            assert got["population"].item() == pop
            assert got["population_couverte"].item() == covered
    combined = dens.query("densite == 4 and type_service == @NO_SERVICE "
                          "and seuil_minutes == 30")
    white = [c for c in COMMUNES if c[1] == "ZA" and c[3] == 4
             and not (min(np.nan_to_num([c[5], c[6]], nan=np.inf)) <= 30)]
    assert combined["communes_zone_blanche"].item() == len(white)


def test_public_csv_masks_small_waiting_counts_internal_does_not(run: RunOutputs,
                                                                tmp_path: Path) -> None:
    export_departement(run, "ZA", formats=["csv"], out_dir=tmp_path / "pub")
    export_departement(run, "ZA", formats=["csv"], out_dir=tmp_path / "int", public=False)
    pub = pd.read_csv(tmp_path / "pub/tables" / f"{WAITING_TABLE}.csv", dtype=str,
                      keep_default_na=False)
    internal = pd.read_csv(tmp_path / "int/tables" / f"{WAITING_TABLE}.csv", dtype=str,
                           keep_default_na=False)
    # ZA rows (ER 2023-2025, MF 2024-2025): counts 3, 12, 0, 5, missing → 3 and 0 masked
    # with what derives from them; the change 2023→2024 is masked because 2023 is
    assert pub["familles_en_attente"].tolist() == ["< 5", "12", "< 5", "5", ""]
    assert pub["delai_moyen_jours"].tolist() == ["secret", "65.0", "", "30.0", ""]
    assert pub["familles_en_attente_pour_100k"].tolist()[0] == "secret"
    assert float(pub["familles_en_attente_pour_100k"].tolist()[1]) == pytest.approx(
        12 / 17000 * 100_000)
    assert pub["familles_en_attente_variation"].tolist() == ["", "secret", "secret", "", ""]
    assert pub["population"].tolist() == ["17000"] * 5  # published figures stay
    assert internal["familles_en_attente"].tolist() == ["3", "12", "0", "5", ""]
    assert internal["familles_en_attente_variation"].tolist() == ["", "9.0", "-12.0", "", ""]
    assert "< 5" not in internal.to_numpy() and "secret" not in internal.to_numpy()
    schema = json.loads((tmp_path / "pub/tables" / f"{WAITING_TABLE}.schema.json").read_text())
    assert {"< 5", "secret"} <= set(schema["missingValues"])
    fields = {f["name"]: f for f in schema["fields"]}
    assert "Secret statistique" in fields["familles_en_attente"]["description"]
    assert "Secret statistique" not in fields["population"].get("description", "")


def test_csv_fr_has_bom_semicolon_and_decimal_comma(run: RunOutputs, tmp_path: Path) -> None:
    export_departement(run, "ZA", formats=["csv", "csv_fr"], out_dir=tmp_path / "exp")
    raw = (tmp_path / "exp/csv_fr/acces_communes.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    header = raw[3:].decode("utf-8").splitlines()[0]
    assert header.split(";") == _PROXY_ACCES_COLUMNS
    fr = pd.read_csv(tmp_path / "exp/csv_fr/acces_communes.csv", sep=";", decimal=",",
                     encoding="utf-8-sig", dtype={"code_insee": str})
    en = pd.read_csv(tmp_path / "exp/tables/acces_communes.csv", dtype={"code_insee": str})
    pd.testing.assert_frame_equal(fr, en)
    assert "29,5" in raw.decode("utf-8-sig")  # ZA009's minutes, decimal comma
    # a masked table mixes markers and numbers in a column: still decimal commas
    waiting = pd.read_csv(tmp_path / "exp/csv_fr" / f"{WAITING_TABLE}.csv", sep=";",
                          encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert waiting["delai_moyen_jours"].tolist() == ["secret", "65,0", "", "30,0", ""]
    assert waiting["familles_en_attente"].tolist() == ["< 5", "12", "< 5", "5", ""]


# --- XLSX --------------------------------------------------------------------------------
def test_xlsx_sheets_headers_panes_and_method(run: RunOutputs, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    path, readme = export_departement(run, "ZA", formats=["xlsx"], out_dir=tmp_path / "exp")
    assert readme.name == export.README_NAME
    wb = load_workbook(path)
    assert wb.sheetnames == ["Département", "Communes", "Zones blanches", "EPCI", "Densité",
                             "Accessibilité département", "Accessibilité EPCI",
                             "Accessibilité communes", "Listes d'attente", METHOD_SHEET]
    # the fictional run: a banner on row 1, titles with units on row 2, codes on row 3
    ws = wb["Communes"]
    assert str(ws["A1"].value).startswith(FICTIONAL_TITLE)
    assert ws.freeze_panes == "C4"
    assert wb["Département"].freeze_panes == "A4"
    codes = [c.value for c in ws[3]]
    assert codes == _PROXY_ACCES_COLUMNS
    titles = [c.value for c in ws[2]]
    assert "Temps d'accès (min)" in titles and "Population (habitants)" in titles
    assert ws.cell(row=2, column=1).font.bold
    assert ws.cell(row=2, column=1).fill.fgColor.rgb.endswith("1F4E79")
    assert ws.max_row == 3 + 18
    minutes_col = codes.index("minutes") + 1
    assert ws.cell(row=4, column=minutes_col).number_format == "0.0"
    dep = wb["Département"]
    dep_codes = [c.value for c in dep[3]]
    taux = dep.cell(row=4, column=dep_codes.index("taux_couverture") + 1)
    assert taux.number_format == "0.0%"
    assert isinstance(taux.value, float) and 0 <= taux.value <= 1
    waiting = wb["Listes d'attente"]
    wcodes = [c.value for c in waiting[3]]
    counts = [waiting.cell(row=r, column=wcodes.index("familles_en_attente") + 1).value
              for r in range(4, waiting.max_row + 1)]
    assert counts == ["< 5", 12, "< 5", 5, None]
    method = method_sheet(wb)
    text = " ".join(str(v) for v in method.values())
    assert "TERRITOIRE FICTIF" in method
    assert FICTIONAL_TITLE in method["TERRITOIRE FICTIF"]
    assert method["Moteur de temps d'accès"].startswith("proxy")
    assert method["Paramètre du moteur : detour_factor"] == "1.3"
    assert method["Seuils (minutes)"] == "20, 30, 45"
    assert "< 5" in method["Secret statistique"]
    assert "aucune donnée réelle" in text


def test_xlsx_internal_and_without_waiting_lists(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    run = make_run(tmp_path, waiting=False, fictif=False)
    path, _readme = export_departement(run, "ZB", formats=["xlsx"],
                                       out_dir=tmp_path / "exp", public=False)
    wb = load_workbook(path)
    assert "Listes d'attente" not in wb.sheetnames
    # no banner for a real run: titles on row 1, codes on row 2
    assert wb["Communes"].freeze_panes == "C3"
    assert wb["Communes"]["A2"].value == "code_insee"
    method = method_sheet(wb)
    assert "INTERNE" in method["Secret statistique"]
    assert "TERRITOIRE FICTIF" not in method


# --- layers ------------------------------------------------------------------------------
def test_gpkg_layers_and_flags_match_zones_blanches(run: RunOutputs, tmp_path: Path) -> None:
    path, _readme = export_departement(run, "ZA", formats=["gpkg"], out_dir=tmp_path / "exp")
    assert set(gpd.list_layers(path)["name"]) == {"communes", "services"}
    com = gpd.read_file(path, layer="communes")
    assert com.crs.to_epsg() == 4326
    assert sorted(com["code_insee"]) == [c[0] for c in COMMUNES if c[1] == "ZA"]
    zb = run.tables["zones_blanches"]
    for t in (MF, ER, NO_SERVICE):
        for s in THRESHOLDS:
            expected = set(zb.query("type_service == @t and seuil_minutes == @s "
                                    "and code_dep == 'ZA'")["code_insee"])
            col = flag_column(t, s)
            assert set(com.loc[com[col].astype(bool), "code_insee"]) == expected, col
    # and against the hand-written minutes (NaN = white)
    za009 = com.set_index("code_insee").loc["ZA009"]
    assert za009["minutes_mediation_familiale"] == 29.5
    assert not za009["zb_mediation_familiale_30"] and za009["zb_mediation_familiale_20"]
    assert com.set_index("code_insee").loc["ZA007", "zb_aucun_service_45"]
    assert np.isnan(com.set_index("code_insee").loc["ZA007", "minutes_espace_rencontre"])
    assert np.isnan(com.set_index("code_insee").loc["ZA007", "minutes_aucun_service"])
    assert com.set_index("code_insee").loc["ZA006", "minutes_aucun_service"] == 19.0
    svc = gpd.read_file(path, layer="services").set_index("service_id")
    assert set(svc.index) == {"S1", "S2", "S3"}
    assert not svc.loc["S3", "dans_departement"] and svc.loc["S1", "dans_departement"]


def test_parquet_layers_and_masked_table(run: RunOutputs, tmp_path: Path) -> None:
    files = export_departement(run, "ZA", formats=["parquet"], out_dir=tmp_path / "exp")
    names = {p.name for p in files}
    assert {"ZA_communes.parquet", "ZA_services.parquet", f"{WAITING_TABLE}.parquet"} <= names
    com = gpd.read_parquet(tmp_path / "exp/ZA_communes.parquet")
    assert com.crs.to_epsg() == 4326 and len(com) == 9
    assert com["zb_aucun_service_20"].dtype == bool
    w = pd.read_parquet(tmp_path / "exp/tables" / f"{WAITING_TABLE}.parquet")
    assert w["familles_en_attente_masque"].tolist() == [True, False, True, False, False]
    assert w["familles_en_attente"].isna().tolist() == [True, False, True, False, True]
    assert w["delai_moyen_jours"].isna().tolist() == [True, False, True, False, True]
    assert w["familles_en_attente_variation_masque"].tolist() == [False, True, True, False,
                                                                  False]
    assert w["population"].notna().all() and "population_masque" not in w.columns


# --- PNG ---------------------------------------------------------------------------------
def test_png_map_is_a_valid_image(run: RunOutputs, tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    path, _readme = export_departement(run, "ZA", formats=["png"], out_dir=tmp_path / "exp")
    assert path.name == "ZA_carte_aucun_service_30min.png"
    # the waiting-list charts are their own format, in their folder
    *charts, _readme = export_departement(run, "ZA", formats=["png_attente"],
                                          out_dir=tmp_path / "exp")
    assert charts and all(p.parent.name == "listes_attente" and p.suffix == ".png"
                          for p in charts)
    assert any(p.name == f"listes_attente_ZA_{ER}.png" for p in charts)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.shape[0] >= 900 and img.shape[1] >= 900
    assert 20_000 < path.stat().st_size < 3_000_000
    # not a blank image: several distinct colours
    assert len(np.unique(img.reshape(-1, img.shape[2])[::97], axis=0)) > 10


def test_png_for_one_type_and_bad_choice(run: RunOutputs, tmp_path: Path) -> None:
    path, _readme = export_departement(run, "ZB", formats=["png"], out_dir=tmp_path / "exp",
                                       map_type=ER, map_threshold=20)
    assert path.name == "ZB_carte_espace_rencontre_20min.png"
    with pytest.raises(CoverageError, match="seuils 20, 30, 45"):
        export_departement(run, "ZB", formats=["png"], out_dir=tmp_path / "x",
                           map_threshold=25)
    assert not (tmp_path / "x").exists()


def test_source_line_names_engine_and_sources(run: RunOutputs) -> None:
    assert "moteur proxy" in results.source_line(run)
    assert "fictif" in results.source_line(run)
    real = RunOutputs(run_dir=run.run_dir, manifest={
        "engine": {"name": "road"}, "fictif": False,
        "inputs": {"communes": {"path": "../shared/data/communes/communes_cog2026.parquet"}}},
        tables=run.tables, communes=run.communes, services=run.services)
    line = results.source_line(real)
    assert "IGN – Admin Express" in line and "OpenStreetMap (ODbL)" in line
    assert "moteur road" in line


def test_all_formats_default(run: RunOutputs, tmp_path: Path) -> None:
    files = export_departement(run, "ZA", out_dir=tmp_path / "exp",
                               settings=Settings(secrecy_threshold=5))
    suffixes = {p.suffix for p in files}
    assert suffixes == {".csv", ".json", ".parquet", ".xlsx", ".gpkg", ".png", ".txt"}
    readme = (tmp_path / "exp" / export.README_NAME).read_text(encoding="utf-8")
    assert FICTIONAL_TITLE in readme and "Export public" in readme
    for p in files:  # every file is described
        if p.name != export.README_NAME:
            assert p.relative_to(tmp_path / "exp").as_posix() in readme
    assert all(p.exists() and p.is_relative_to(tmp_path / "exp") for p in files)
    assert not list(tmp_path.glob(".export-*"))
