"""scripts/build_communes_table.py on a tiny hand-written package (no network)."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_communes_table",
                                                  REPO / "scripts" / "build_communes_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _package(folder: Path) -> Path:
    data = folder / "data"
    data.mkdir()
    communes = [
        {"code": "01001", "nom": "A", "departement": "01", "region": "84", "zone": "metro",
         "type": "commune-actuelle", "population": 860, "anciensCodes": ["01999"]},
        {"code": "01002", "nom": "B", "departement": "01", "region": "84", "zone": "metro",
         "type": "commune-actuelle", "population": 270, "anciensCodes": ["01888"]},
        {"code": "01003", "nom": "C", "departement": "01", "region": "84", "zone": "metro",
         "type": "commune-actuelle", "population": 10},
        # an old code leading to two current communes: ambiguous
        {"code": "01888", "nom": "D", "departement": "01", "region": "84", "zone": "metro",
         "type": "commune-associee", "chefLieu": "01001"},
        # the delegated commune that is the new commune's seat, under the same code
        {"code": "01002", "nom": "B", "departement": "01", "region": "84", "zone": "metro",
         "type": "commune-deleguee", "chefLieu": "01002"},
        {"code": "01101", "nom": "Arr 1", "departement": "01", "region": "84",
         "zone": "metro", "type": "arrondissement-municipal", "commune": "01003"},
    ]
    (data / "communes.json").write_text(json.dumps(communes), encoding="utf-8")
    (data / "epci.json").write_text(json.dumps([
        {"code": "200000001", "nom": "CC Test", "membres": [{"code": "01001"},
                                                           {"code": "01002"}]}]))
    (data / "departements.json").write_text(json.dumps([{"code": "01", "nom": "Ain"}]))
    (data / "regions.json").write_text(json.dumps([{"code": "84", "nom": "ARA"}]))
    return data


def test_build_tables_from_a_tiny_package(tmp_path: Path) -> None:
    script = _script()
    out = tmp_path / "out"
    assert script.main(["--package-dir", str(_package(tmp_path)), "--out", str(out)]) == 0
    table = pd.read_csv(out / script.COMMUNES_FILE, dtype=str)
    assert table["code_insee"].tolist() == ["01001", "01002", "01003"]
    assert table["code_epci"].fillna("").tolist() == ["200000001", "200000001", ""]
    assert table["nom_dep"].unique().tolist() == ["Ain"]
    passage = pd.read_csv(out / script.PASSAGE_FILE, dtype=str)
    rows = {(r.code_ancien, r.code_actuel, r.source, r.ambigu)
            for r in passage.itertuples()}
    assert ("01999", "01001", "ancien-code", "False") in rows
    assert ("01888", "01001", "commune-associee", "True") in rows
    assert ("01888", "01002", "ancien-code", "True") in rows
    assert ("01101", "01003", "arrondissement-municipal", "False") in rows
    seat = passage[passage["code_ancien"] == "01002"]
    assert seat["code_actuel_aussi"].tolist() == ["True"]
    # reproducible bytes (gzip without timestamp)
    first = (out / script.PASSAGE_FILE).read_bytes()
    script.main(["--package-dir", str(tmp_path / "data"), "--out", str(out)])
    assert (out / script.PASSAGE_FILE).read_bytes() == first
    assert gzip.decompress(first).startswith(b"code_ancien,code_actuel,source,ambigu")


def test_embedded_tables_match_the_documented_counts() -> None:
    from coverage.cog import national_communes, passage_codes

    assert len(national_communes()) == 34_969
    assert len(passage_codes()) == 4_871
