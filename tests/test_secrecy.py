"""Statistical secrecy (coverage.secrecy): small counts and what derives from them masked.

The behaviour tests of :func:`mask_small_counts` moved here from ``test_export.py`` with the
code; the waiting-list rule built on it (:func:`coverage.waiting.mask_public`) is tested in
``test_waiting.py`` and the exports' markers in ``test_export.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from coverage.schemas import LISTES_ATTENTE_DEPARTEMENTS, Contract, Field
from coverage.secrecy import (
    SECRET_MARKER,
    mask_cells,
    mask_small_counts,
    secrecy_marker,
    secret_columns,
)


def test_mask_small_counts_text_marker_masks_exactly_the_small_cells() -> None:
    df = pd.DataFrame({"n": [0, 3, 4, 5, 12, np.nan], "delai": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                       "other": [1, 2, 3, 4, 5, 6]})
    out = mask_small_counts(df, ["n"], 5, "< 5", derived={"n": ["delai"]})
    assert out["n"].tolist() == ["< 5", "< 5", "< 5", 5.0, 12.0, None]
    assert out["delai"].tolist() == ["< 5", "< 5", "< 5", 4.0, 5.0, 6.0]
    assert out["other"].tolist() == df["other"].tolist()
    assert df["n"].iloc[1] == 3  # the input is not modified


def test_mask_small_counts_null_and_flag_for_parquet() -> None:
    df = pd.DataFrame({"n": pd.array([0, 3, 7, None], dtype="Int64"),
                       "n_taux": [0.0, 1.5, 3.5, np.nan]})
    out = mask_small_counts(df, ["n"], 5, None, derived={"n": ["n_taux"]})
    assert list(out.columns) == ["n", "n_masque", "n_taux", "n_taux_masque"]
    assert out["n_masque"].tolist() == [True, True, False, False]
    assert out["n"].isna().tolist() == [True, True, False, True]
    assert out["n"].iloc[2] == 7
    assert out["n_taux"].isna().tolist() == [True, True, False, True]


def test_mask_threshold_is_configurable() -> None:
    df = pd.DataFrame({"n": [2, 3, 9]})
    assert mask_small_counts(df, ["n"], 3, "< 3")["n"].tolist() == ["< 3", 3, 9]


def test_derived_marker_differs_from_count_marker() -> None:
    df = pd.DataFrame({"n": [2, 8], "delai": [10.0, 20.0]})
    out = mask_small_counts(df, ["n"], 5, "< 5", derived={"n": ["delai"]},
                            derived_marker="secret")
    assert out["n"].tolist() == ["< 5", 8] and out["delai"].tolist() == ["secret", 20.0]


def test_markers() -> None:
    assert secrecy_marker(5) == "< 5" and secrecy_marker(11) == "< 11"
    assert SECRET_MARKER == "secret"


def test_mask_cells_masks_the_rows_given_per_column() -> None:
    df = pd.DataFrame({"n": [2.0, 12.0, np.nan], "taux": [0.5, 1.5, 2.5]})
    rows = pd.Series([False, True, False])
    out = mask_cells(df, {"n": rows, "taux": rows}, "< 5", counts=["n"],
                     derived_marker=SECRET_MARKER)
    assert out["n"].tolist() == [2, "< 5", None]  # whole counts lose their decimals
    assert out["taux"].tolist() == [0.5, "secret", 2.5]
    flagged = mask_cells(df, {"n": rows}, None)
    assert list(flagged.columns) == ["n", "n_masque", "taux"]
    assert flagged["n"].isna().tolist() == [False, True, True]
    assert df["n"].iloc[1] == 12.0  # the input is not modified


def test_mask_cells_keeps_an_existing_flag_column() -> None:
    df = pd.DataFrame({"n": [1, 9], "n_masque": [False, True]})
    out = mask_cells(df, {"n": pd.Series([True, False])}, None)
    assert out["n_masque"].tolist() == [True, True]
    assert list(out.columns) == ["n", "n_masque"]


def test_secret_columns_from_names_and_contract_units() -> None:
    df = pd.DataFrame({"familles_en_attente": [3], "familles_en_attente_pour_100k": [1.0],
                       "familles_en_attente_masque": [False], "delai_moyen_jours": [20.0],
                       "places": [4], "population": [1000]})
    contract = Contract("t", "T", (Field("places", "integer", False, "familles"),
                                   Field("population", "integer", False, "habitants")))
    counts, derived = secret_columns(df, contract)
    assert counts == ["familles_en_attente", "places"]
    assert derived["familles_en_attente"] == ("delai_moyen_jours",
                                              "familles_en_attente_pour_100k")
    assert derived["places"] == ()
    assert secret_columns(df)[0] == ["familles_en_attente"]  # without a contract


def test_waiting_contract_counts_are_secret() -> None:
    df = pd.DataFrame(columns=LISTES_ATTENTE_DEPARTEMENTS.columns)
    counts, _ = secret_columns(df, LISTES_ATTENTE_DEPARTEMENTS)
    assert {"familles_en_attente", "mesures_judiciaires", "entretiens_information",
            "mediations_engagees"} <= set(counts)
    assert not {"population", "services", "services_avec_liste"} & set(counts)
