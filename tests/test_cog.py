"""Commune-code harmonisation against the embedded COG 2026 tables."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage.cog import (
    current_codes,
    dep_of_code,
    harmonise_codes,
    national_communes,
    normalise_codes,
    normalise_dep_codes,
    passage_codes,
)
from coverage.errors import UnknownCodeError


def test_national_tables() -> None:
    nat = national_communes()
    assert nat["code_insee"].is_unique
    assert nat["code_insee"].str.len().eq(5).all()
    assert {"2A004", "2B033", "97411", "75056"} <= set(nat["code_insee"])
    assert set(nat.loc[nat["zone"] == "metro", "code_dep"]) >= {"01", "2A", "2B", "95"}
    assert (nat["population"].dropna() >= 0).all()
    assert nat.loc[nat["code_insee"] == "15014", "code_epci"].item() == "241500230"
    passage = passage_codes()
    assert passage["code_actuel"].isin(current_codes()).all()
    assert set(passage.loc[passage["ambigu"], "code_ancien"]) == {"55273", "60455"}
    # a fresh copy each time: callers may modify it
    nat["nom"] = "x"
    assert national_communes()["nom"].iloc[0] != "x"


def test_normalise_codes() -> None:
    s = pd.Series([" 1001", "1001.0", "2a004", "15014", None, "", "ABC"])
    out = normalise_codes(s)
    assert out.tolist()[:4] == ["01001", "01001", "2A004", "15014"]
    assert out.iloc[4:6].isna().all()
    assert out.iloc[6] == "ABC"
    assert normalise_dep_codes(pd.Series(["1", "2a", "971", "15.0"])).tolist() == \
        ["01", "2A", "971", "15"]
    assert dep_of_code(pd.Series(["01001", "2B033", "97411"])).tolist() == ["01", "2B", "974"]


def test_old_codes_are_remapped_with_a_warning() -> None:
    passage = passage_codes()
    row = passage[(passage["source"] == "ancien-code") & ~passage["ambigu"]
                  & ~passage["code_actuel_aussi"]].iloc[0]
    codes = pd.Series(["15014", "01340", "69387", row["code_ancien"]])
    h = harmonise_codes(codes, file="f.csv")
    assert h.codes.tolist() == ["15014", "01015", "69123", row["code_actuel"]]
    assert h.remapped["row"].tolist() == [2, 3, 4]
    assert h.remapped["code_ancien"].tolist()[:2] == ["01340", "69387"]
    (warning,) = h.warnings
    assert "ligne 2 01340→01015" in warning and "f.csv" in warning


def test_current_codes_untouched() -> None:
    h = harmonise_codes(pd.Series(["01015", "2A004"]), file="f")
    assert h.codes.tolist() == ["01015", "2A004"]
    assert h.remapped.empty and not h.warnings


@pytest.mark.parametrize(
    ("code", "expected"),
    [("99999", "table de passage"), ("55273", "sans ambiguïté"), ("ZA001", "fictifs"),
     ("12", "5 caractères"), (None, "un code commune")],
)
def test_unknown_codes_name_the_row(code: str | None, expected: str) -> None:
    codes = pd.Series(["15014", code, "15187"])
    with pytest.raises(UnknownCodeError) as exc:
        harmonise_codes(codes, file="f.csv", column="code_commune")
    (p,) = exc.value.problems
    assert (p.file, p.row, p.column) == ("f.csv", 2, "code_commune")
    assert expected in p.expected


def test_fictional_codes_only_in_a_fictional_data_set() -> None:
    h = harmonise_codes(pd.Series(["ZA001", "zb002"]), file="f", fictional=True)
    assert h.codes.tolist() == ["ZA001", "ZB002"]
    with pytest.raises(UnknownCodeError, match="ligne 2"):
        harmonise_codes(pd.Series(["ZA001", "15014"]), file="f", fictional=True)


def test_vectorised_on_the_national_table() -> None:
    codes = national_communes()["code_insee"]
    h = harmonise_codes(codes, file="national")
    assert h.codes.equals(codes)


_NUMERIC_CODES = sorted(c for c in current_codes() if c.isdigit())


@settings(max_examples=200, deadline=None)
@given(code=st.sampled_from(_NUMERIC_CODES), form=st.sampled_from(["int", "float", "pad"]))
def test_spreadsheet_forms_of_a_code_come_back(code: str, form: str) -> None:
    """A code that went through a spreadsheet (int, float, blanks) is recovered exactly."""
    text = {"int": str(int(code)), "float": f"{int(code)}.0", "pad": f" {code} "}[form]
    h = harmonise_codes(pd.Series([text]), file="f")
    assert h.codes.tolist() == [code]
    assert h.remapped.empty
