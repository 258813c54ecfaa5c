"""Exact siting (issue 14): the integer programs against brute force and spopt, the base of
the counts, the candidate filters, the p-median, and the ``sites`` command.

* Maximal covering: the HiGHS optimum equals exhaustive enumeration on seeded random
  instances, never below the greedy; a hand-made instance where the greedy is strictly
  worse reports the gap; PySAL ``spopt``'s MCLP (pulp + its bundled CBC) finds the same
  covered population on the same coverage matrix, existing coverage as a predefined site.
* p-median: the optimum equals enumeration (NaN existing times left out of the objective),
  every commune goes to its nearest service.
* The FICTIONAL demo (proxy run) and the real Massif Central proxy run (``../shared/data``,
  skipped when absent): the département base, ``--avec-voisins``, ``--pop-min``,
  ``--candidats``, ``--exclure``, bad ``k`` and unknown codes (one French line, exit 2).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from coverage.errors import CoverageError, UnknownCodeError
from coverage.results import RunOutputs
from coverage.siting import (
    P_MEDIAN_COLUMNS,
    SITES_COLUMNS,
    STATUS_OPTIMAL,
    MaximalCovering,
    PMedian,
    SitingOptions,
    code_list,
    read_code_list,
    sites_for_run,
)

ER, MF = "espace_rencontre", "mediation_familiale"
SEEDS = range(20)


def _instance(seed: int) -> dict[str, Any]:
    """A random small instance: coverage, minutes, weights, existing coverage and times."""
    rng = np.random.default_rng(seed)
    n_cand, n_dem = int(rng.integers(3, 8)), int(rng.integers(4, 13))
    minutes = rng.uniform(1.0, 60.0, (n_cand, n_dem))
    reach = rng.random((n_cand, n_dem)) < 0.7  # absent pairs: not reachable
    existing = rng.uniform(5.0, 70.0, n_dem)
    existing[rng.random(n_dem) < 0.2] = np.nan  # no existing service reachable
    r, c = np.nonzero(reach)
    cost = pd.DataFrame({"site_id": [f"c{i}" for i in r], "code_insee": [f"d{j}" for j in c],
                         "minutes": minutes[r, c]})
    return {"n_cand": n_cand, "n_dem": n_dem, "minutes": np.where(reach, minutes, np.nan),
            "weights": rng.integers(0, 500, n_dem), "existing": existing, "cost": cost,
            "cands": [f"c{i}" for i in range(n_cand)], "dems": [f"d{j}" for j in range(n_dem)]}


def _covering(inst: dict[str, Any], threshold: float = 25.0) -> MaximalCovering:
    already = inst["existing"] <= threshold  # NaN: not covered
    return MaximalCovering.from_cost_matrix(
        inst["cost"], candidate_ids=inst["cands"], demand_ids=inst["dems"],
        weights=inst["weights"], threshold_min=threshold, covered=already)


def _brute_covering(inst: dict[str, Any], k: int, threshold: float = 25.0) -> int:
    covers = inst["minutes"] <= threshold
    fresh = ~(inst["existing"] <= threshold)
    return max(int(inst["weights"][covers[list(s)].any(axis=0) & fresh].sum())
               for s in itertools.combinations(range(inst["n_cand"]), k))


# --- maximal covering: exact against brute force and greedy -----------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_mclp_milp_equals_brute_force_never_below_greedy(seed: int) -> None:
    inst = _instance(seed)
    for k in range(1, min(3, inst["n_cand"]) + 1):
        best = _brute_covering(inst, k)
        exact = _covering(inst).solve_exact(k)
        greedy = _covering(inst).solve(k)
        assert exact.status == STATUS_OPTIMAL
        assert sum(exact.gains) == best == exact.value(exact.picks)
        assert sum(greedy.gains) <= sum(exact.gains)
        assert len(exact.picks) <= k and len(set(exact.picks)) == len(exact.picks)
        # ranked greedily among themselves: non-increasing gains, no double counting
        assert exact.gains == sorted(exact.gains, reverse=True)
        assigned = exact.assignment >= 0
        assert not (assigned & _covering(inst).covered).any()
        assert int(inst["weights"][assigned].sum()) == sum(exact.gains)


def _greedy_trap() -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """S1 covers d1-d4 (8), S2 covers d1, d2, d5 (7), S3 covers d3, d4, d6 (7).

    k = 2: the greedy takes S1 then S2 (8 + 3 = 11); the optimum is S2 + S3 = 14.
    """
    pairs = {"S1": ["d1", "d2", "d3", "d4"], "S2": ["d1", "d2", "d5"],
             "S3": ["d3", "d4", "d6"]}
    cost = pd.DataFrame([(s, d, 10.0) for s, ds in pairs.items() for d in ds],
                        columns=["site_id", "code_insee", "minutes"])
    return cost, [f"d{i}" for i in range(1, 7)], np.array([2, 2, 2, 2, 3, 3])


def test_greedy_gap_on_a_hand_made_trap() -> None:
    cost, dems, w = _greedy_trap()
    kw: dict[str, Any] = {"candidate_ids": ["S1", "S2", "S3"], "demand_ids": dems,
                          "weights": w, "threshold_min": 30.0}
    greedy = MaximalCovering.from_cost_matrix(cost, **kw).solve(2)
    exact = MaximalCovering.from_cost_matrix(cost, **kw).solve_exact(2)
    assert [greedy.candidate_ids[p] for p in greedy.picks] == ["S1", "S2"]
    assert sum(greedy.gains) == 11
    assert sorted(exact.candidate_ids[p] for p in exact.picks) == ["S2", "S3"]
    assert sum(exact.gains) == 14 and exact.gains == [7, 7]
    # existing sites are fixed: with d5 and d6 already covered the greedy choice is optimal
    fixed = MaximalCovering.from_cost_matrix(
        cost, covered=np.array([False] * 4 + [True, True]), **kw).solve_exact(2)
    assert sum(fixed.gains) == 8 and fixed.candidate_ids[fixed.picks[0]] == "S1"


def test_gap_in_the_result_and_the_french_summary() -> None:
    """plan_new_sites on the trap (given cost, access and points): gap 3 of 14 (21,4 %)."""
    from coverage.cli.sites import format_sites
    from coverage.routing.proxy import ProxyEngine
    from coverage.siting import plan_new_sites

    cost, dems, w = _greedy_trap()
    communes = pd.DataFrame({"code_insee": dems, "nom": dems, "code_dep": "15",
                             "population": w, "lon": 2.5, "lat": 45.0, "densite": 4})
    access = pd.DataFrame({"code_insee": dems, "type_service": ER, "minutes": 90.0,
                           "moteur": "proxy"})
    cands = pd.DataFrame({"site_id": ["S1", "S2", "S3"], "code_insee": ["d1", "d2", "d3"],
                          "nom": ["un", "deux", "trois"], "code_dep": "15", "lon": 2.5,
                          "lat": 45.0})
    res = plan_new_sites(communes, access, None, ProxyEngine(), type_service=ER,
                         threshold_min=30.0, candidates=cands, k=2, depts=["15"], cost=cost)
    p = res.parameters
    assert (p["optimum_population"], p["glouton_population"]) == (14, 11)
    assert p["ecart_glouton_population"] == 3
    assert p["ecart_glouton_part"] == pytest.approx(3 / 14)
    assert res.table["population_nouvellement_couverte"].sum() == 14
    assert (res.table["methode"] == "exacte").all()
    text = format_sites(res)
    assert "écart de la méthode gloutonne : 3 habitants" in text and "21,4 %" in text
    greedy = plan_new_sites(communes, access, None, ProxyEngine(), type_service=ER,
                            threshold_min=30.0, candidates=cands, k=2, depts=["15"],
                            cost=cost, options=SitingOptions(method="gloutonne"))
    assert greedy.table["population_nouvellement_couverte"].sum() == 11
    assert "écart à l'optimum non calculé" in format_sites(greedy)
    assert greedy.greedy is None and res.greedy is not None


def test_solver_without_a_solution_keeps_the_greedy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A solver stopped on its time limit without a solution: the greedy, said so."""
    from scipy.optimize import OptimizeResult

    from coverage import siting

    def stopped(*_: Any, **__: Any) -> OptimizeResult:
        return OptimizeResult(x=None, status=1, message="Time limit reached")

    monkeypatch.setattr(siting, "milp", stopped)
    cost, dems, w = _greedy_trap()
    m = MaximalCovering.from_cost_matrix(cost, candidate_ids=["S1", "S2", "S3"],
                                         demand_ids=dems, weights=w, threshold_min=30.0)
    m.solve_exact(2, time_limit_s=0.01)
    assert sum(m.gains) == 11 and m.status == siting.STATUS_TIME_LIMIT
    p = _pmedian(_instance(3)).solve_exact(2)
    assert p.status == siting.STATUS_TIME_LIMIT and len(p.picks) == 2


# --- maximal covering against spopt -----------------------------------------------------

@pytest.fixture(scope="module")
def spopt_mclp() -> tuple[Any, Any]:
    """spopt's MCLP class and pulp's bundled CBC solver (skips when unusable offline)."""
    pulp = pytest.importorskip("pulp")
    with pytest.MonkeyPatch.context() as mp:
        # numba (pulled in by libpysal) hooks coverage.py by importing a module named
        # ``coverage``, and finds this project instead: import spopt without numba.
        mp.setitem(sys.modules, "numba", None)
        locate = pytest.importorskip("spopt.locate")
    solver = pulp.PULP_CBC_CMD(msg=False)
    if not solver.available():
        pytest.skip("pulp's bundled CBC solver is not available on this machine")
    return locate.MCLP, solver


@pytest.mark.parametrize("seed", SEEDS)
def test_mclp_equals_spopt_on_the_same_matrix(seed: int, spopt_mclp: tuple[Any, Any]) -> None:
    mclp_cls, solver = spopt_mclp
    inst, threshold = _instance(seed), 25.0
    already = inst["existing"] <= threshold
    # spopt: a dense clients × facilities matrix (an absent pair gets a time far beyond the
    # radius, which spopt needs as a number); the existing services are one predefined
    # facility covering exactly the already covered communes
    cost = np.where(np.isnan(inst["minutes"]), 1e6, inst["minutes"]).T
    existing_col = np.where(already, 0.0, 1e6)[:, None]
    full = np.hstack([cost, existing_col])
    predefined = np.array([False] * inst["n_cand"] + [True])
    for k in range(1, min(3, inst["n_cand"]) + 1):
        model = mclp_cls.from_cost_matrix(full, inst["weights"], service_radius=threshold,
                                          p_facilities=k + 1,
                                          predefined_facilities_arr=predefined)
        model = model.solve(solver)
        chosen = [j for j, v in enumerate(model.fac_vars) if v.value() > 0.5]
        covered = (full[:, chosen] <= threshold).any(axis=1)
        spopt_total = int(inst["weights"][covered].sum())
        ours = _covering(inst, threshold).solve_exact(k)
        assert sum(ours.gains) + int(inst["weights"][already].sum()) == spopt_total


# --- p-median ---------------------------------------------------------------------------

def _pmedian(inst: dict[str, Any]) -> PMedian:
    return PMedian.from_cost_matrix(inst["cost"], candidate_ids=inst["cands"],
                                    demand_ids=inst["dems"], weights=inst["weights"],
                                    existing=inst["existing"])


@pytest.mark.parametrize("seed", SEEDS)
def test_p_median_milp_equals_brute_force(seed: int) -> None:
    inst = _instance(seed)
    d0, w, mins = inst["existing"], inst["weights"], inst["minutes"]
    ok = np.isfinite(d0)  # unreachable communes: out of the objective

    def nearest(rows: Any) -> np.ndarray:
        """Minutes to the nearest existing or chosen service (NaN: none reachable)."""
        sub = np.where(np.isnan(mins[list(rows)]), np.inf, mins[list(rows)]).min(axis=0)
        return np.fmin(d0, np.where(np.isinf(sub), np.nan, sub))

    def brute(rows: tuple[int, ...]) -> float:
        best = nearest(rows)
        return float((w[ok] * best[ok]).sum())

    for k in range(1, min(3, inst["n_cand"]) + 1):
        best = min(brute(s) for s in itertools.combinations(range(inst["n_cand"]), k))
        exact = _pmedian(inst).solve_exact(k)
        greedy = _pmedian(inst).solve(k)
        assert exact.status == STATUS_OPTIMAL and len(exact.picks) == k
        assert exact.objective(exact.picks) == pytest.approx(best, rel=1e-9, abs=1e-6)
        assert greedy.objective(greedy.picks) >= best - 1e-6
        # every commune goes to its nearest service; NaN only when nothing reaches it
        expect = nearest(exact.picks)
        np.testing.assert_allclose(exact.after, expect, rtol=1e-12)
        assert np.isnan(exact.after).sum() == np.isnan(expect).sum()
        moved = exact.assignment >= 0
        site_min = mins[np.asarray(exact.picks)[exact.assignment[moved]], np.flatnonzero(moved)]
        np.testing.assert_allclose(site_min, exact.after[moved])
        assert not (exact.existing[moved] <= exact.after[moved]).any()


def test_p_median_k_above_candidates() -> None:
    inst = _instance(0)
    with pytest.raises(CoverageError, match="k ≤"):
        _pmedian(inst).solve_exact(inst["n_cand"] + 1)
    with pytest.raises(CoverageError, match="k = 0"):
        _pmedian(inst).solve(0)


# --- code lists -------------------------------------------------------------------------

def test_read_code_list_columns_and_rows(tmp_path: Path) -> None:
    f = tmp_path / "fs.csv"
    f.write_text("Nom;Code commune\nMende;48095\n;\nFlorac;48061\n", encoding="utf-8")
    lst = read_code_list(f)
    assert lst.codes == ("48095", "48061") and lst.rows == (1, 3)
    assert lst.column == "Code commune" and lst.source == str(f)
    bad = tmp_path / "bad.csv"
    bad.write_text("nom,adresse\nMende,rue\n", encoding="utf-8")
    with pytest.raises(CoverageError, match="colonne « code_insee »"):
        read_code_list(bad)
    assert code_list(["48095", " ", "48061"], "--exclure").rows == (1, 3)


# --- the FICTIONAL demo, proxy run --------------------------------------------------------

@pytest.fixture(scope="module")
def demo_run(demo_proxy_run: Path) -> RunOutputs:
    return RunOutputs.load(demo_proxy_run)


def test_default_base_is_the_departement(demo_run: RunOutputs) -> None:
    res = sites_for_run(demo_run, "ZA", type_service=ER, threshold_min=20.0, k=3)
    t, p = res.table, res.parameters
    assert list(t.columns) == list(SITES_COLUMNS)
    assert t["population_nouvellement_couverte_hors_departement"].isna().all()
    assert set(res.covered["code_dep"]) == {"ZA"}  # nothing outside ZA counted
    assert p["base"] == "département ZA" and not p["voisins_comptes"]
    assert (t["base_comptage"] == "département ZA").all()
    # one base: newly covered, cumulative and remaining add up on ZA's families
    za = demo_run.communes[demo_run.communes["code_dep"] == "ZA"]
    assert int(t["population_nouvellement_couverte"].sum()) == int(
        p["population_zone_blanche_initiale"] - t["population_zone_blanche_restante"].iloc[-1])
    assert (t["population_couverte_cumulee"] + t["population_zone_blanche_restante"]
            == int(za["population"].sum())).all()
    assert int(res.covered["population"].sum()) == int(t["population_nouvellement_couverte"]
                                                       .sum())


def test_neighbours_in_a_separate_column(demo_run: RunOutputs) -> None:
    only = sites_for_run(demo_run, "ZA", type_service=ER, threshold_min=20.0, k=2)
    both = sites_for_run(demo_run, "ZA", type_service=ER, threshold_min=20.0, k=2,
                         options=SitingOptions(neighbours=True))
    t = both.table
    assert t["population_nouvellement_couverte_hors_departement"].notna().all()
    out = both.covered[both.covered["code_dep"] != "ZA"]
    assert int(t["population_nouvellement_couverte_hors_departement"].sum()) == int(
        out["population"].sum())
    inside = both.covered[both.covered["code_dep"] == "ZA"]
    assert int(t["population_nouvellement_couverte"].sum()) == int(inside["population"].sum())
    # same base for the département columns, whatever the objective counted
    assert (both.parameters["population_zone_blanche_initiale"]
            == only.parameters["population_zone_blanche_initiale"])
    assert both.parameters["optimum_population"] >= only.parameters["optimum_population"]
    assert both.parameters["optimum_population"] == int(both.covered["population"].sum())


def test_candidate_filters(demo_run: RunOutputs, tmp_path: Path) -> None:
    communes = demo_run.communes
    za = communes[communes["code_dep"] == "ZA"]
    pop = dict(zip(za["code_insee"], za["population"], strict=True))
    floor = int(np.median(za["population"]))
    res = sites_for_run(demo_run, "ZA", type_service=ER, threshold_min=20.0, k=3,
                        options=SitingOptions(pop_min=floor))
    assert len(res.table) >= 1
    assert all(pop[c] >= floor for c in res.table["code_insee"])
    assert res.parameters["candidats_sous_pop_min"] == int((za["population"] < floor).sum())
    assert res.parameters["candidats"] == int((za["population"] >= floor).sum())
    # a list (with codes of another département, ignored) and exclusions
    listed = sorted(za["code_insee"])[:6]
    f = tmp_path / "premises.csv"
    f.write_text("code_insee,type\n" + "".join(f"{c},France Services\n" for c in listed)
                 + "ZB001,MSA\n", encoding="utf-8")
    opts = SitingOptions(candidate_codes=read_code_list(f),
                         exclude_codes=code_list([listed[0]], "--exclure"))
    res = sites_for_run(demo_run, "ZA", type_service=ER, threshold_min=20.0, k=2,
                        options=opts)
    assert set(res.table["code_insee"]) <= set(listed[1:])
    assert res.parameters["candidats"] == 5 and res.parameters["candidats_exclus"] == 1
    assert res.parameters["codes_autres_departements_ignores"] == 1


def test_bad_candidates_and_k(demo_run: RunOutputs, tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("code_insee\nZA001\nZA999\n", encoding="utf-8")
    with pytest.raises(UnknownCodeError) as exc:
        sites_for_run(demo_run, "ZA", type_service=ER, threshold_min=20.0,
                      options=SitingOptions(candidate_codes=read_code_list(f)))
    text = str(exc.value)
    assert str(f) in text and "ligne 2" in text and "« code_insee »" in text
    assert "ZA999" in text
    n = int((demo_run.communes["code_dep"] == "ZA").sum())
    with pytest.raises(CoverageError, match=f"k ≤ {n} attendu"):
        sites_for_run(demo_run, "ZA", type_service=ER, threshold_min=20.0, k=n + 1)
    with pytest.raises(CoverageError, match="k = 0 refusé"):
        sites_for_run(demo_run, "ZA", type_service=ER, threshold_min=20.0, k=0)
    with pytest.raises(CoverageError, match="aucun candidat"):
        sites_for_run(demo_run, "ZA", type_service=ER, threshold_min=20.0,
                      options=SitingOptions(pop_min=10**9))


def test_p_median_on_demo(demo_run: RunOutputs) -> None:
    res = sites_for_run(demo_run, "ZA", type_service=ER, threshold_min=20.0, k=2,
                        options=SitingOptions(objective="p-median"))
    t, p = res.table, res.parameters
    assert list(t.columns) == list(P_MEDIAN_COLUMNS) and len(t) == 2
    assert p["statut"] == STATUS_OPTIMAL
    assert p["optimum_minutes_habitants"] <= p["glouton_minutes_habitants"] + 1e-6
    assert p["minutes_moyennes_apres"] <= p["minutes_moyennes_avant"]
    assert (t["minutes_moyennes_apres"] <= t["minutes_moyennes_avant"]).all()
    assert set(res.covered["code_dep"]) == {"ZA"}
    model = res.model
    assert isinstance(model, PMedian)
    # the objective is the département's inhabitants × minutes after the new sites
    assert p["optimum_minutes_habitants"] == pytest.approx(
        float((model.weights[model.in_objective] * model.after[model.in_objective]).sum()))


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from coverage.cli import main

    code = main(["sites", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_on_demo(demo_run: RunOutputs, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    from coverage.cli.sites import is_sites_csv

    run = ["--run", str(demo_run.run_dir), "--dept", "ZA", "--type", ER, "--seuil", "20"]
    out = tmp_path / "pm.csv"
    code, text, err = _cli(capsys, *run, "-k", "2", "--objectif", "p-median", "--out",
                           str(out))
    assert code == 0, err
    assert "TERRITOIRE FICTIF" in text and "p-médiane" in text
    assert "Minutes moyennes après (dép. ZA)" in text and "Optimum exact" in text
    assert is_sites_csv(out)
    assert list(pd.read_csv(out).columns) == list(P_MEDIAN_COLUMNS)
    code, text, err = _cli(capsys, *run, "-k", "2", "--avec-voisins", "--methode",
                           "gloutonne")
    assert code == 0, err
    assert "Pop. des voisins (à part)" in text and "Méthode gloutonne seule" in text
    assert "nan" not in text.lower() and "inf" not in text.split()
    bad = tmp_path / "bad.csv"
    for argv, expected in (
        (["-k", "500"], "k ≤"),
        (["-k", "0"], "-k"),
        (["--exclure", "ZA999"], "--exclure, position 1"),
        (["--candidats", str(tmp_path / "absent.csv")], "fichier introuvable"),
        (["--pop-min", "-3"], "--pop-min"),
    ):
        code, text, err = _cli(capsys, *run, *argv, "--out", str(bad))
        assert code == 2, argv
        lines = err.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], err
        assert "Traceback" not in err
    assert not bad.exists()


# --- the real Massif Central proxy run (../shared/data), Lozère ----------------------------

@pytest.fixture(scope="module")
def massif_central_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A proxy run of the real Massif Central territory (Cantal, Aveyron, Lozère)."""
    from test_whitezones import _massif_central_inputs

    from coverage.batch import RunOptions, run_batch

    out = tmp_path_factory.mktemp("mc_sites") / "run"
    run_batch(_massif_central_inputs(shared_data), out_dir=out,
              options=RunOptions(workers=1, isochrones=False, engine="proxy"))
    return out


@pytest.mark.shared
def test_cli_lozere_filters_and_base(massif_central_run: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    run = RunOutputs.load(massif_central_run)
    communes = run.communes
    pop = dict(zip(communes["code_insee"].astype(str), communes["population"], strict=True))
    dep = dict(zip(communes["code_insee"].astype(str), communes["code_dep"].astype(str),
                   strict=True))
    args = ["--run", str(massif_central_run), "--dept", "48", "--type", MF, "--seuil", "30"]
    out = tmp_path / "lozere.csv"
    code, text, err = _cli(capsys, *args, "-k", "3", "--pop-min", "1000", "--out", str(out))
    assert code == 0, err
    table = pd.read_csv(out, dtype={"code_insee": str, "site_id": str})
    assert len(table) >= 1 and (table["code_dep"].astype(str) == "48").all()
    assert all(pop[c] >= 1000 for c in table["code_insee"])  # no candidate under the floor
    assert table["population_nouvellement_couverte_hors_departement"].isna().all()
    assert "Base des comptes : familles du département 48" in text
    assert "Pop. nouvellement couverte (dép. 48)" in text and "Optimum exact" in text
    # nothing outside Lozère is counted by default: the library's covered communes
    res = sites_for_run(run, "48", type_service=MF, threshold_min=30.0, k=3,
                        options=SitingOptions(pop_min=1000))
    assert {dep[c] for c in res.covered["code_insee"]} == {"48"}
    assert res.table["code_insee"].tolist() == table["code_insee"].tolist()
    # with the neighbours: counted apart, the Lozère columns keep their base
    both = sites_for_run(run, "48", type_service=MF, threshold_min=30.0, k=3,
                         options=SitingOptions(pop_min=1000, neighbours=True))
    inside = both.covered[both.covered["code_dep"] == "48"]
    assert int(both.table["population_nouvellement_couverte"].sum()) == int(
        inside["population"].sum())
    assert both.parameters["optimum_population"] >= res.parameters["optimum_population"]
    # a list of real premises with an unknown Lozère code: one French line, exit 2
    premises = tmp_path / "premises.csv"
    premises.write_text("code_insee,nom\n48095,Mende\n12202,Rodez\n48999,inconnue\n",
                        encoding="utf-8")
    code, text, err = _cli(capsys, *args, "--candidats", str(premises))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "ligne 3" in err and "« code_insee »" in err and "48999" in err
    premises.write_text("code_insee,nom\n48095,Mende\n12202,Rodez\n", encoding="utf-8")
    code, text, err = _cli(capsys, *args, "--candidats", str(premises), "-k", "1")
    assert code == 0, err
    assert "48095" in text and "1 code(s) d'autres départements ignoré(s)" in text
