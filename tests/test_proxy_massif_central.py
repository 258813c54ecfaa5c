"""Issue 12 on the real Massif Central (Cantal, Aveyron, Lozère) with the partial real list.

- No commune of density level 1–2 is slower than all of its adjacent communes (the
  ``adjacence`` layer) by more than 2 minutes: the trip-level proxy has no town artefact.
- Ranges: ``min ≤ value ≤ max`` for every white-zone figure and every commune's minutes.
- Empty offers are written to the manifest (``avertissements``) and the CLI summary.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from test_whitezones import _massif_central_inputs

from coverage.batch import RunOptions, run_batch
from coverage.cli.run import summary_lines
from coverage.whitezones import RANGE_COLUMNS

pytestmark = [pytest.mark.shared, pytest.mark.slow]


@pytest.fixture(scope="module")
def mc_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> object:
    inputs = _massif_central_inputs(shared_data)
    out = tmp_path_factory.mktemp("mc_proxy")
    return run_batch(inputs, out_dir=out,
                     options=RunOptions(workers=1, isochrones=False, engine="proxy"))


def test_no_town_slower_than_all_its_neighbours(mc_run: object, shared_data: Path) -> None:
    acc = mc_run.tables["acces_communes"]  # type: ignore[attr-defined]
    adj = gpd.read_file(shared_data / "territoires" / "massif_central_15_12_48.gpkg",
                        layer="adjacence")
    both = pd.concat([adj[["code_insee_a", "code_insee_b"]],
                      adj.rename(columns={"code_insee_a": "code_insee_b",
                                          "code_insee_b": "code_insee_a"})
                      [["code_insee_a", "code_insee_b"]]])
    towns = set(acc.loc[acc["densite"].isin([1, 2]), "code_insee"])
    assert len(towns) >= 10
    checked = 0
    for _stype, sub in acc.groupby("type_service"):
        minutes = dict(zip(sub["code_insee"], sub["minutes"], strict=True))
        pairs = both[both["code_insee_a"].isin(towns) & both["code_insee_b"].isin(minutes)]
        slowest_neighbour = pairs.assign(
            m=pairs["code_insee_b"].map(minutes)).groupby("code_insee_a")["m"].max()
        for town, worst in slowest_neighbour.items():
            assert minutes[town] <= worst + 2.0, (town, minutes[town], worst)
            checked += 1
    assert checked >= 20


def test_ranges_bracket_every_figure(mc_run: object) -> None:
    tables = mc_run.tables  # type: ignore[attr-defined]
    acc = tables["acces_communes"]
    ok = acc["minutes"].notna()
    assert (acc.loc[ok, "minutes_min"] <= acc.loc[ok, "minutes"] + 1e-9).all()
    assert (acc.loc[ok, "minutes"] <= acc.loc[ok, "minutes_max"] + 1e-9).all()
    for name in ("couverture_departements", "couverture_france", "couverture_densite"):
        t = tables[name]
        assert set(RANGE_COLUMNS) <= set(t.columns) and t[list(RANGE_COLUMNS)].notna().all().all()
        for what in ("communes_zone_blanche", "population_zone_blanche"):
            assert (t[f"{what}_min"] <= t[what]).all() and (t[what] <= t[f"{what}_max"]).all()
        # the ranges are real ranges somewhere, not copies of the value
        assert (t["population_zone_blanche_min"] < t["population_zone_blanche_max"]).any()


def test_empty_offer_is_warned(mc_run: object) -> None:
    notes = mc_run.manifest["avertissements"]  # type: ignore[attr-defined]
    assert any("Médiation familiale" in n and "48" in n for n in notes)
    lines = summary_lines(mc_run)  # type: ignore[arg-type]
    assert any(line.startswith("Avertissement : ") and "48" in line for line in lines)
    assert any("fourchette" in line for line in lines)
    assert any(line.startswith("Fourchettes : ") and "1,2" in line for line in lines)
