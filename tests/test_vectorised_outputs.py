"""The vectorised output code (issue 18) against the pandas code it replaced.

Each replacement is compared with the previous definition, kept here as the reference, on
random inputs (hypothesis): the weighted percentiles of the coverage tables (one sort, then
cumulative weights per group, instead of a groupby cumsum and a merge per quantile), the
``acces_communes`` grid (positions instead of a cross join and a left join), and the CSV
text of the output tables (formatted once per distinct value instead of ``to_csv``), byte
for byte.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from coverage.errors import CoverageError
from coverage.io.writers import conform_to_contract, csv_text, write_table
from coverage.schemas import ACCES_COMMUNES, COUVERTURE_DEPARTEMENTS, Contract, Field
from coverage.whitezones import _QUANTILES, _Groups, access_table

MF, ER = "mediation_familiale", "espace_rencontre"
TEXT_CONTRACT = Contract("t", "t", (Field("raison", "string", False),))
FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


# --- Weighted percentiles ---------------------------------------------------------------

def _previous_percentiles(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The weighted percentiles before issue 18 (groupby cumsum, one merge per quantile)."""
    g = frame[[*keys, "population", "minutes"]].copy()
    g["_m"] = g["minutes"].fillna(np.inf)
    g["_w"] = g["population"].astype("int64")
    g = g.sort_values([*keys, "_m"], kind="mergesort")
    grouped = g.groupby(keys, sort=False, dropna=False)
    g["_cum"] = grouped["_w"].cumsum()
    g["_tot"] = grouped["_w"].transform("sum")
    result = grouped["_w"].sum().rename("_tot").reset_index()
    for name, (num, den) in _QUANTILES.items():
        reached = g[(g["_cum"] * den >= g["_tot"] * num) & (g["_tot"] > 0)]
        first = reached.groupby(keys, sort=False, dropna=False).head(1)[[*keys, "_m"]]
        result = result.merge(first.rename(columns={"_m": name}), on=keys, how="left")
    return result.drop(columns="_tot")


def _by_keys(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The groups in key order (the old code listed them sorted, the new by appearance)."""
    return frame.sort_values(keys, kind="mergesort").reset_index(drop=True)


def _vectorised_percentiles(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    minutes = frame["minutes"].to_numpy(dtype=float)
    groups = _Groups.of([frame[k] for k in keys], minutes)
    out = frame[keys].iloc[groups.first].reset_index(drop=True)
    pop = frame["population"].to_numpy(dtype=np.int64)
    for name, (num, den) in _QUANTILES.items():
        out[name] = groups.weighted_quantile(minutes, pop, num, den)
    return out


_minutes = st.one_of(st.just(np.nan), st.just(np.inf), st.sampled_from([5.0, 20.0, 30.0]),
                     st.floats(0, 300, allow_nan=False))


@st.composite
def _weighted_rows(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 40))
    return pd.DataFrame({
        "code_dep": draw(st.lists(st.sampled_from(["01", "2A", "976", None]), min_size=n,
                                  max_size=n)),
        "type_service": pd.Series(draw(st.lists(st.sampled_from([MF, ER]), min_size=n,
                                                max_size=n)), dtype=object),
        "population": draw(st.lists(st.one_of(st.just(0), st.integers(0, 100_000)),
                                    min_size=n, max_size=n)),
        "minutes": draw(st.lists(_minutes, min_size=n, max_size=n)),
    })


@FAST
@given(_weighted_rows())
def test_weighted_percentiles_equal_previous_definition(frame: pd.DataFrame) -> None:
    assume(frame["code_dep"].notna().any())  # the old merge failed on an all-missing key
    keys = ["code_dep", "type_service"]
    got = _by_keys(_vectorised_percentiles(frame, keys), keys)
    want = _by_keys(_previous_percentiles(frame, keys), keys)
    assert_frame_equal(got, want, check_exact=True, check_dtype=False)
    assert got["minutes_mediane"].dtype == np.float64


def test_weighted_percentiles_seeded_large() -> None:
    """Many groups, ties and unreachable communes: the same figures as before."""
    rng = np.random.default_rng(18)
    n = 5000
    minutes = rng.choice([np.nan, 10.0, 25.0, 40.0, 70.0], n) + rng.integers(0, 3, n)
    frame = pd.DataFrame({"code_dep": rng.choice([f"{i:02d}" for i in range(1, 60)], n),
                          "type_service": pd.Series(rng.choice([MF, ER], n), dtype=object),
                          "population": rng.integers(0, 5000, n) * rng.integers(0, 2, n),
                          "minutes": minutes})
    keys = ["code_dep", "type_service"]
    got = _by_keys(_vectorised_percentiles(frame, keys), keys)
    want = _by_keys(_previous_percentiles(frame, keys), keys)
    assert_frame_equal(got, want, check_exact=True, check_dtype=False)
    assert np.isinf(got["minutes_p90"]).any() and got["minutes_mediane"].notna().any()


def test_group_sums_match_groupby() -> None:
    rng = np.random.default_rng(3)
    keys = pd.Series(rng.choice(["a", "b", None], 200), dtype=object)
    values = rng.integers(0, 1000, 200)
    groups = _Groups.of([keys], rng.random(200))
    want = pd.Series(values).groupby(keys, sort=False, dropna=False).sum()
    assert groups.sums(values).tolist() == want.tolist()


# --- acces_communes grid ----------------------------------------------------------------

def _previous_access_grid(communes: pd.DataFrame, nearest: pd.DataFrame,
                          types: list[str]) -> pd.DataFrame:
    """The grid before issue 18: a cross join, then a left join with the travel times."""
    com = communes[["code_insee", "nom", "code_dep", "population", "densite", "rural"]].copy()
    com["code_insee"] = com["code_insee"].astype(str)
    near = nearest.copy()
    near["code_insee"] = near["code_insee"].astype(str)
    grid = com.merge(pd.DataFrame({"type_service": types}), how="cross")
    out = grid.merge(near, on=["code_insee", "type_service"], how="left", validate="1:1")
    out["_t"] = out["type_service"].map({t: i for i, t in enumerate(types)})
    return out.sort_values(["code_insee", "_t"], kind="mergesort").drop(columns="_t")


def _communes(codes: list[str]) -> pd.DataFrame:
    n = len(codes)
    return pd.DataFrame({"code_insee": codes, "nom": [f"Commune {c}" for c in codes],
                         "code_dep": ["48"] * n, "population": list(range(n)),
                         "densite": [4] * n, "rural": [True] * n})


@FAST
@given(st.lists(st.sampled_from([f"48{i:03d}" for i in range(12)]), min_size=1, max_size=12,
                unique=True), st.data())
def test_access_grid_equals_previous_joins(codes: list[str], data: st.DataObject) -> None:
    communes = _communes(codes)
    pairs = data.draw(st.lists(st.tuples(st.sampled_from(codes), st.sampled_from([MF, ER])),
                               unique=True, max_size=2 * len(codes)))
    n = len(pairs)
    minutes = data.draw(st.lists(st.one_of(st.just(np.nan), st.floats(0, 200)), min_size=n,
                                 max_size=n))
    nearest = pd.DataFrame({
        "code_insee": [p[0] for p in pairs],
        "type_service": pd.Series([p[1] for p in pairs], dtype=object),
        "minutes": pd.Series(minutes, dtype=float),
        "service_id": pd.Series([f"S{i}" for i in range(n)], dtype=object),
        "distance_km": pd.Series(minutes, dtype=float) * 0.8,
        "moteur": pd.Series(["proxy"] * n, dtype=object)})
    types = data.draw(st.sampled_from([[MF, ER], [MF], [ER]]))
    got = access_table(communes, nearest, service_types=types, moteur="proxy")
    want = _previous_access_grid(communes, nearest, types)
    assert got["code_insee"].tolist() == want["code_insee"].tolist()
    assert got["type_service"].dtype == want["type_service"].dtype
    assert got["type_service"].tolist() == want["type_service"].tolist()
    assert_frame_equal(got[["nom", "population", "minutes", "service_id"]].reset_index(
        drop=True), want[["nom", "population", "minutes", "service_id"]].reset_index(
        drop=True), check_exact=True)
    assert got["moteur"].eq("proxy").all()
    assert list(got.columns) == ACCES_COMMUNES.columns


def test_access_grid_refuses_duplicates() -> None:
    communes = _communes(["48001", "48002"])
    nearest = pd.DataFrame({"code_insee": ["48001", "48001"], "type_service": [MF, MF],
                            "minutes": [1.0, 2.0], "service_id": ["a", "b"],
                            "distance_km": [1.0, 1.0], "moteur": ["proxy", "proxy"]})
    with pytest.raises(CoverageError, match="48001 × type twice"):
        access_table(communes, nearest, service_types=[MF])
    with pytest.raises(CoverageError, match="appear twice in the communes"):
        access_table(_communes(["48001", "48001"]), nearest.iloc[:1], service_types=[MF])


# --- CSV text ---------------------------------------------------------------------------

def _to_csv(frame: pd.DataFrame) -> str:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


_text = st.one_of(st.none(), st.text(st.characters(blacklist_categories=["Cs"],
                                                   blacklist_characters="\r"), max_size=8),
                  st.sampled_from(['a,b', 'dit "x"', "l1\nl2", "", " ", "Saint-Étienne"]))
_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0.0, -0.0, 1e16, 1e-5, 0.1, 45.0, 5e-324]))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_csv_text_is_byte_identical_to_to_csv(data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 15))
    ints = data.draw(st.lists(st.integers(-2**62, 2**62), min_size=n, max_size=n))
    nullable = data.draw(st.lists(st.one_of(st.none(), st.integers(0, 9)), min_size=n,
                                  max_size=n))
    frame = pd.DataFrame({
        "texte": pd.Series(data.draw(st.lists(_text, min_size=n, max_size=n)), dtype="str"),
        "nombre": pd.Series(data.draw(st.lists(_floats, min_size=n, max_size=n)),
                            dtype="float64"),
        "entier": pd.Series(ints, dtype="int64"),
        "entier_vide": pd.Series(nullable, dtype="Int64"),
        "oui": pd.Series(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)),
                         dtype=bool),
        "oui_vide": pd.Series([None if v is None else v > 4 for v in nullable],
                              dtype="boolean"),
        'a "b",c': pd.Series(ints, dtype="int64"),
    })
    assert csv_text(frame) == _to_csv(frame)


def test_csv_text_leaves_odd_tables_to_pandas() -> None:
    assert csv_text(pd.DataFrame({"a": ["x\ry"], "b": [1]})) is None
    assert csv_text(pd.DataFrame({"a": [""]})) is None  # pandas writes '""'
    assert csv_text(pd.DataFrame({"a": pd.Series([1], dtype=object), "b": [1]})) is None


def test_write_table_csv_bytes_unchanged(tmp_path: Path) -> None:
    """A coverage table written by ``write_table``: the bytes ``to_csv`` gives."""
    frame = pd.DataFrame({c: [1, 2] for c in COUVERTURE_DEPARTEMENTS.columns})
    frame["code_dep"] = ["2A", "976"]
    frame["type_service"] = pd.Series([MF, "aucun_service"], dtype=object)
    frame["seuil_minutes"] = [20.0, 45.0]
    frame["taux_couverture"] = [0.5, np.nan]
    frame["minutes_mediane"] = [np.inf, 12.25]
    write_table(frame, COUVERTURE_DEPARTEMENTS, tmp_path)
    expected = _to_csv(conform_to_contract(frame, COUVERTURE_DEPARTEMENTS))
    written = (tmp_path / "couverture_departements.csv").read_bytes()
    assert written == expected.encode("utf-8")
    assert b"inf" in written


@FAST
@given(st.lists(st.one_of(st.none(), st.just(np.nan), st.text(max_size=5)), max_size=10))
def test_text_columns_conform_as_before(values: list[object]) -> None:
    """The text fast path of ``conform_to_contract``: the values of the per-cell loop."""
    s = pd.Series(values, dtype=object)
    got = conform_to_contract(pd.DataFrame({"raison": s}), TEXT_CONTRACT)["raison"]
    out = s.where(s.notna(), None)
    want = pd.Series([None if v is None else str(v) for v in out], dtype="str", name="raison")
    assert_frame_equal(got.to_frame(), want.to_frame(), check_exact=True)


# --- CSV lines copied from the previous run (issue 18) ------------------------------------

def _edited(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    """Change some cells of ``frame``: other values, missing ones, -0.0 for 0.0."""
    out = frame.copy()
    for i in data.draw(st.lists(st.integers(0, max(len(frame) - 1, 0)), max_size=4)):
        if not len(frame):
            break
        col = data.draw(st.sampled_from(list(frame.columns)))
        if out[col].dtype == np.float64:
            out.loc[i, col] = data.draw(_floats)
        elif out[col].dtype == "str":
            out.loc[i, col] = data.draw(st.one_of(st.none(), _text))
        elif str(out[col].dtype) == "Int64":
            out.loc[i, col] = data.draw(st.one_of(st.none(), st.integers(0, 9)))
        elif out[col].dtype == bool:
            out.loc[i, col] = not out.loc[i, col]
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_spliced_csv_equals_a_whole_write(tmp_path_factory: pytest.TempPathFactory,
                                          data: st.DataObject) -> None:
    """Lines copied from the previous table: the bytes of a whole write, always."""
    from coverage.io.writers import PreviousTable

    n = data.draw(st.integers(0, 12))
    nullable = data.draw(st.lists(st.one_of(st.none(), st.integers(0, 9)), min_size=n,
                                  max_size=n))
    old = pd.DataFrame({
        "texte": pd.Series(data.draw(st.lists(_text, min_size=n, max_size=n)), dtype="str"),
        "nombre": pd.Series(data.draw(st.lists(_floats, min_size=n, max_size=n)),
                            dtype="float64"),
        "entier_vide": pd.Series(nullable, dtype="Int64"),
        "oui": pd.Series(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)),
                         dtype=bool),
    })
    new = _edited(old, data)
    if data.draw(st.booleans()) and n:  # one row less: the table is written whole
        new = new.iloc[1:].reset_index(drop=True)
    contract = Contract("t", "T", (Field("texte", "string", True, "", "t", ""),
                                   Field("nombre", "number", True, "", "n", ""),
                                   Field("entier_vide", "integer", True, "", "e", ""),
                                   Field("oui", "boolean", True, "", "o", "")))
    folder = tmp_path_factory.mktemp("splice")
    write_table(old, contract, folder / "old")
    previous = PreviousTable(pd.read_parquet(folder / "old" / "t.parquet"),
                             (folder / "old" / "t.csv").read_bytes())
    write_table(new, contract, folder / "spliced", previous=previous)
    write_table(new, contract, folder / "whole")
    for ext in (".csv", ".parquet"):
        assert (folder / "spliced" / f"t{ext}").read_bytes() == \
            (folder / "whole" / f"t{ext}").read_bytes()


def test_spliced_csv_copies_the_unchanged_lines(tmp_path: Path) -> None:
    """The copied lines are those of the previous file (seen by marking one of them)."""
    from coverage.io.writers import PreviousTable

    frame = pd.DataFrame({"texte": pd.Series(["a", "b", "c"], dtype="str"),
                          "nombre": [1.5, 2.5, 3.5]})
    contract = Contract("t", "T", (Field("texte", "string", True, "", "t", ""),
                                   Field("nombre", "number", True, "", "n", "")))
    marked = b"texte,nombre\na,1.5\nb,MARK\nc,3.5\n"  # as if line 2 came from the old file
    new = frame.copy()
    new.loc[2, "nombre"] = -0.0
    write_table(new, contract, tmp_path, previous=PreviousTable(frame, marked))
    assert (tmp_path / "t.csv").read_bytes() == b"texte,nombre\na,1.5\nb,MARK\nc,-0.0\n"
    # a previous CSV whose lines do not map to its rows is not used
    write_table(new, contract, tmp_path, previous=PreviousTable(frame, b"texte,nombre\n"))
    assert (tmp_path / "t.csv").read_bytes() == b"texte,nombre\na,1.5\nb,2.5\nc,-0.0\n"


# --- combined view and white zones, vectorised (issue 18) --------------------------------

def _random_access(seed: int, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    codes = sorted(rng.choice(100_000, n, replace=False))
    types = [MF, ER]
    rows = []
    for c in codes:
        for t in types:
            m = rng.choice([np.nan, 10.0, 25.0, 25.0, 45.0]) + rng.integers(0, 2)
            rows.append({"code_insee": f"{c:05d}", "nom": f"C{c}", "code_dep": f"{c % 7:02d}",
                         "population": int(rng.integers(0, 900)), "densite": 3, "rural": True,
                         "type_service": t, "minutes": m,
                         "service_id": None if np.isnan(m) else f"S{rng.integers(9)}",
                         "distance_km": np.nan, "moteur": "proxy",
                         "distance_estimee_km": m / 2, "minutes_min": m - 1 if m > 20 else np.nan,
                         "minutes_max": m + 1,
                         "raison": "non accessible" if np.isnan(m) else None})
    frame = pd.DataFrame(rows)
    for col in ("code_insee", "nom", "code_dep", "type_service", "service_id", "moteur",
                "raison"):
        frame[col] = frame[col].astype("str")
    return frame


def _previous_white_zones(full: pd.DataFrame, thresholds: list[float]) -> pd.DataFrame:
    """The white zones before issue 18: a selection per threshold, then a sort."""
    from coverage.labels import REASON_TOO_FAR, REASON_UNREACHABLE
    from coverage.schemas import ZONES_BLANCHES
    from coverage.whitezones import _type_order, is_white_zone

    types = _type_order(list(pd.unique(full["type_service"])))
    minutes = full["minutes"].to_numpy(dtype=float)
    reason = full["raison"].where(full["raison"].notna(), REASON_UNREACHABLE)
    reason = reason.where(full["minutes"].isna(), REASON_TOO_FAR).astype(object)
    parts = []
    for t in sorted(thresholds):
        white = is_white_zone(minutes, t)
        part = full.loc[white, ["code_insee", "nom", "code_dep", "population", "type_service"]]
        parts.append(part.assign(seuil_minutes=t, raison=reason[white].to_numpy()))
    out = pd.concat(parts, ignore_index=True)
    out["_t"] = out["type_service"].map({t: i for i, t in enumerate(types)})
    out = out.sort_values(["_t", "seuil_minutes", "code_insee"], kind="mergesort")
    return out[ZONES_BLANCHES.columns].reset_index(drop=True)


def _previous_combined(access: pd.DataFrame) -> pd.DataFrame:
    """The combined view before issue 18: a stable sort by code and minutes."""
    base = access[access["type_service"] != "aucun_service"]
    order = base.assign(_k=base["minutes"].fillna(np.inf)).sort_values(
        ["code_insee", "_k"], kind="mergesort")
    best = order.drop_duplicates("code_insee", keep="first").drop(columns="_k").copy()
    best["type_service"] = "aucun_service"
    unreachable = best["minutes"].isna()
    for col in ("service_id", "distance_km", "distance_estimee_km"):
        best.loc[unreachable, [col]] = np.nan
    for col in ("minutes_min", "minutes_max"):
        bound = base.groupby("code_insee", sort=False)[col].min()
        best[col] = best["code_insee"].map(bound).to_numpy(dtype=np.float64)
    return best.reset_index(drop=True)


@pytest.mark.parametrize("seed", range(3))
def test_combined_view_and_white_zones_as_before(seed: int) -> None:
    from coverage.whitezones import combined_access, white_zones

    access = _random_access(seed)
    fast = combined_access(access)  # rows by commune: the vectorised path
    assert_frame_equal(fast, _previous_combined(access), check_exact=True)
    shuffled = access.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    general = combined_access(shuffled)  # codes out of order: the sorting path
    assert_frame_equal(general, _previous_combined(shuffled), check_exact=True)
    full = pd.concat([access, fast], ignore_index=True)
    got = white_zones(full, [20.0, 30.0, 45.0])
    assert_frame_equal(got, _previous_white_zones(full, [20.0, 30.0, 45.0]), check_exact=True)
    assert len(got) and (got["type_service"] == "aucun_service").any()
