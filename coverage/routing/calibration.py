"""Calibration of the proxy engine on real road times (``zones-blanches calibrer``).

The proxy (:func:`coverage.routing.proxy.trip_minutes`) estimates a trip's minutes as::

    minutes = τ[dens(origin)] + τ[dens(destination)]
              + 60 × (min(r, B) / v_near + max(r − B, 0) / v_far),   r = straight km × detour

with ``τ`` the access time of one end by INSEE density level (minutes), ``B`` the road km
where the speed changes (:data:`BREAK_KM`), ``v_near``/``v_far`` the speeds (km/h). This
module fits ``τ1…τ4``, ``v_near`` and ``v_far`` to real times between commune points —
timed on a road graph (the road engine's bounded matrix) or read from a time table (INSEE
Metric, OSRM …, :func:`coverage.routing.imported.read_times`) — and reports the fit on
held-back communes.

Method:

* **Split**: each commune goes to the *fit* or the *check* half by the parity of the
  SHA-256 of its code (:func:`split_halves`: deterministic, spatially random). The fit uses
  the pairs whose two ends are in the fit half; the figures come from the pairs whose two
  ends are in the check half, so no commune of the check figures was seen by the fit.
* **Fit domain**: pairs at most :data:`FIT_MAX_STRAIGHT_KM` apart in straight line (the
  distances where a 20–45 minute threshold is decided).
* **Fit**: for fixed detour and ``B`` the minutes are linear in ``(τ1…τ4, 60/v_near,
  60/v_far)``; ``scipy.optimize.least_squares`` minimises a robust loss (soft L1, scale
  :data:`LOSS_SCALE_MIN` minutes: a few valley pairs with a long detour do not drag the
  speeds) under bounds τ ≥ 0 and speeds in [5, 200] km/h. The detour stays at the
  settings' value: only detour ÷ speed enters the minutes, so detour and speeds cannot be
  told apart from times alone (the speeds absorb a local detour). ``B`` stays at
  :data:`BREAK_KM` (weakly identifiable: it trades with ``v_near`` and the ``τ``).
  A density level absent from the fit pairs keeps its current value.
* **Figures** (:class:`Scores`): median and 90th percentile of the absolute error
  (minutes), and the share of pairs on the same side of 20, 30 and 45 minutes as the real
  times; on all check pairs, on the check pairs of the fit domain, and on the
  "commune → nearest of a few sites" times (:func:`pick_sites`: the most populous commune,
  then the most populous at least :data:`SITE_SPACING_KM` from those chosen, up to
  :data:`N_SITES`), the question the tool answers. The previous proxy (straight line ×
  1.3 ÷ a speed of 30/45/60/65 km/h by the origin's density level,
  :func:`baseline_minutes`) is scored beside it.

Straight-line distances are measured in a metric CRS (Lambert-93 in metropolitan France,
:func:`coverage.geo.metric_crs_for_lonlat` elsewhere); points are EPSG:4326 ``lon``/``lat``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from coverage._validate import ProblemList, require_columns
from coverage.cog import harmonise_codes, normalise_codes
from coverage.errors import CoverageError
from coverage.geo import lonlat_to_xy, metric_crs_for_lonlat
from coverage.io.tables import read_table, rename_aliases, to_number
from coverage.labels import FICTIONAL_TITLE
from coverage.routing.base import Engine, lonlat
from coverage.routing.imported import TimesTable
from coverage.routing.proxy import trip_minutes
from coverage.settings import Settings, is_fictional_code

__all__ = [
    "BASELINE_DETOUR",
    "BASELINE_SPEED_KMH",
    "BREAK_KM",
    "FIT_MAX_STRAIGHT_KM",
    "LOSS_SCALE_MIN",
    "N_SITES",
    "OSM_PLACE_DENSITY",
    "POINT_ALIASES",
    "SIDES_MIN",
    "SITE_SPACING_KM",
    "Calibration",
    "CalibrationPoints",
    "PairTimes",
    "Scores",
    "baseline_minutes",
    "calibrate",
    "extract_points",
    "fit_proxy",
    "osm_places",
    "pairs_from_engine",
    "pairs_from_table",
    "pick_sites",
    "read_points",
    "report_lines",
    "score",
    "settings_document",
    "split_halves",
]

log = logging.getLogger(__name__)

#: The previous proxy: straight line × 1.3 ÷ this speed by the origin's density, km/h.
BASELINE_SPEED_KMH: Mapping[int, float] = {1: 30.0, 2: 45.0, 3: 60.0, 4: 65.0}
#: The previous proxy's detour factor.
BASELINE_DETOUR = 1.3
#: Road km where the fitted speed changes (fixed, see the module docstring).
BREAK_KM = 10.0
#: Scale of the soft-L1 loss, minutes (errors beyond it weigh linearly, not squared).
LOSS_SCALE_MIN = 5.0
#: Thresholds whose side (≤ or >) is compared, minutes.
SIDES_MIN: tuple[float, ...] = (20.0, 30.0, 45.0)
#: Sites of the "nearest of a few sites" figures.
N_SITES = 5
#: Smallest straight-line distance between two sites, km.
SITE_SPACING_KM = 25.0
#: Fit domain: pairs at most this far apart in straight line, km. White zones are decided
#: at 45 minutes at most, i.e. within about 45 km in straight line; longer pairs would pull
#: the far speed toward that of long motorway trips. The window is on the distance (the
#: model's input), never on the real minutes, so it does not bias the fit.
FIT_MAX_STRAIGHT_KM = 50.0
_SPEED_BOUNDS_KMH = (5.0, 200.0)
_DENSITY_LEVELS = (1, 2, 3, 4)


@dataclass(frozen=True)
class CalibrationPoints:
    """Commune points of a calibration.

    Attributes
    ----------
    codes
        Identifiers (object array of str), as the times name them.
    names
        Names (for the sites), object array.
    x_km, y_km
        Coordinates in the metric CRS, km.
    densite
        INSEE density level (1 … 4), int64.
    population
        Inhabitants (float64; 0 when unknown), to pick the sites.
    crs
        The metric CRS.
    """

    codes: np.ndarray
    names: np.ndarray
    x_km: np.ndarray
    y_km: np.ndarray
    densite: np.ndarray
    population: np.ndarray
    crs: str

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> CalibrationPoints:
        """Build points from ``code_insee``, ``lon``, ``lat`` (EPSG:4326), ``densite``.

        ``nom`` and ``population`` are optional.

        Raises
        ------
        CoverageError
            A column is missing or a density level is not 1–4.
        """
        require_columns(frame, ("code_insee", "lon", "lat", "densite"), file="communes")
        lon, lat = lonlat(frame, "communes")
        dens = pd.to_numeric(frame["densite"], errors="coerce")
        if not dens.isin(_DENSITY_LEVELS).all():
            bad = frame.loc[~dens.isin(_DENSITY_LEVELS), "code_insee"].astype(str).tolist()
            msg = f"communes : niveau de densité de 1 à 4 attendu pour {bad[:10]}"
            raise CoverageError(msg)
        crs = metric_crs_for_lonlat(float(np.median(lon)), float(np.median(lat)))
        xy = lonlat_to_xy(lon, lat, crs) / 1000.0
        names = frame["nom"] if "nom" in frame.columns else frame["code_insee"]
        pop = (pd.to_numeric(frame["population"], errors="coerce").fillna(0.0)
               if "population" in frame.columns else pd.Series(np.zeros(len(frame))))
        return cls(frame["code_insee"].astype(str).to_numpy(dtype=object),
                   names.astype(str).to_numpy(dtype=object), xy[:, 0], xy[:, 1],
                   dens.to_numpy(np.int64), pop.to_numpy(np.float64), crs)

    def __len__(self) -> int:
        """Return the number of points."""
        return int(self.codes.shape[0])

    def straight_km(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Return the straight-line km between points ``i`` and ``j`` (metric CRS)."""
        return np.asarray(np.hypot(self.x_km[i] - self.x_km[j], self.y_km[i] - self.y_km[j]),
                          dtype=np.float64)


@dataclass(frozen=True)
class PairTimes:
    """Real minutes between points (origin → destination), diagonal excluded.

    Attributes
    ----------
    origin, destination
        Indices into the points (int64).
    minutes
        Real minutes (float64, finite).
    source
        Where the times come from (file name, road graph …).
    """

    origin: np.ndarray
    destination: np.ndarray
    minutes: np.ndarray
    source: str


def pairs_from_table(table: TimesTable, points: CalibrationPoints) -> PairTimes:
    """Return the pairs of ``table`` between the points (others are ignored, logged).

    Parameters
    ----------
    table
        Times read by :func:`coverage.routing.imported.read_times` (commune × commune).
    points
        The commune points; codes are compared as strings.
    """
    index = {c: i for i, c in enumerate(points.codes)}
    o = np.array([index.get(str(c), -1) for c in table.origin], dtype=np.int64)
    d = np.array([index.get(str(c), -1) for c in table.destination], dtype=np.int64)
    keep = (o >= 0) & (d >= 0) & (o != d) & np.isfinite(table.minutes)
    if (~keep).sum():
        log.info("%s: %d pairs left out (diagonal or code not among the points)",
                 table.path.name, int((~keep).sum()))
    return PairTimes(o[keep], d[keep], table.minutes[keep], table.path.name)


def split_halves(codes: Sequence[str] | np.ndarray) -> np.ndarray:
    """Return True for the communes of the fit half (parity of the SHA-256 of the code)."""
    return np.array([int(hashlib.sha256(str(c).encode()).hexdigest(), 16) % 2 == 0
                     for c in codes], dtype=bool)


def baseline_minutes(straight_km: np.ndarray, dens_origin: np.ndarray) -> np.ndarray:
    """Return the previous proxy's minutes: straight km × 1.3 ÷ speed of the origin's level."""
    speed = np.array([BASELINE_SPEED_KMH[int(k)] for k in np.asarray(dens_origin)],
                     dtype=np.float64).reshape(np.shape(dens_origin))
    return np.asarray(straight_km, dtype=np.float64) * BASELINE_DETOUR / speed * 60.0


def _design(straight_km: np.ndarray, dens_o: np.ndarray, dens_d: np.ndarray,
            detour: float, break_km: float) -> np.ndarray:
    """Return the linear design matrix: end counts per level, near km, far km."""
    road = straight_km * detour
    cols = [(dens_o == k).astype(float) + (dens_d == k).astype(float) for k in _DENSITY_LEVELS]
    cols += [np.minimum(road, break_km), np.maximum(road - break_km, 0.0)]
    return np.column_stack(cols)


def fit_proxy(points: CalibrationPoints, pairs: PairTimes, mask: np.ndarray,
              settings: Settings = Settings()) -> Settings:
    """Fit the proxy's access times and speeds to the pairs selected by ``mask``.

    Parameters
    ----------
    points
        The commune points.
    pairs
        Real minutes.
    mask
        The pairs to fit on (bool, one per pair).
    settings
        Starting values; ``proxy_detour_factor`` is kept, ``proxy_speed_break_km`` is set
        to :data:`BREAK_KM`.

    Returns
    -------
    Settings
        ``settings`` with the fitted ``proxy_access_min_by_density`` (minutes),
        ``proxy_speed_near_kmh`` and ``proxy_speed_far_kmh`` (km/h).

    Raises
    ------
    CoverageError
        Fewer than 10 pairs to fit on.
    """
    o, d = pairs.origin[mask], pairs.destination[mask]
    if o.shape[0] < 10:
        msg = (f"calibration : {o.shape[0]} paires dans la moitié d'ajustement, au moins 10 "
               "nécessaires")
        raise CoverageError(msg)
    x = _design(points.straight_km(o, d), points.densite[o], points.densite[d],
                settings.proxy_detour_factor, BREAK_KM)
    y = pairs.minutes[mask]
    access = dict(settings.proxy_access_min_by_density)
    start = np.array([access.get(k, 0.0) for k in _DENSITY_LEVELS]
                     + [60.0 / settings.proxy_speed_near_kmh, 60.0 / settings.proxy_speed_far_kmh])
    seen = x[:, :4].sum(axis=0) > 0
    lo = np.array([0.0] * 4 + [60.0 / _SPEED_BOUNDS_KMH[1]] * 2)
    hi = np.array([120.0] * 4 + [60.0 / _SPEED_BOUNDS_KMH[0]] * 2)
    free = np.concatenate([seen, x[:, 4:].max(axis=0) > 0])  # a speed needs its km
    fixed = start.copy()

    def residuals(p: np.ndarray) -> np.ndarray:
        full = fixed.copy()
        full[free] = p
        return np.asarray(x @ full - y, dtype=np.float64)

    res = least_squares(residuals, np.clip(start[free], lo[free], hi[free]),
                        bounds=(lo[free], hi[free]), loss="soft_l1", f_scale=LOSS_SCALE_MIN)
    full = fixed.copy()
    full[free] = res.x
    fitted = {k: round(float(full[i]), 2) for i, k in enumerate(_DENSITY_LEVELS)}
    return replace(settings, proxy_access_min_by_density=fitted,
                   proxy_speed_near_kmh=round(60.0 / float(full[4]), 1),
                   proxy_speed_far_kmh=round(60.0 / float(full[5]), 1),
                   proxy_speed_break_km=BREAK_KM)


@dataclass(frozen=True)
class Scores:
    """Agreement of estimated minutes with real ones.

    Attributes
    ----------
    n
        Number of times compared.
    median_abs_min, p90_abs_min
        Median and 90th percentile of the absolute error, minutes.
    median_error_min
        Median signed error (estimate − real), minutes.
    same_side
        Threshold (minutes) → share (0–1) of times on the same side of it as the real ones.
    """

    n: int
    median_abs_min: float
    p90_abs_min: float
    median_error_min: float
    same_side: Mapping[float, float]

    def record(self) -> dict[str, Any]:
        """Return the JSON-ready figures."""
        return {"n": self.n, "erreur_abs_mediane_min": round(self.median_abs_min, 2),
                "erreur_abs_p90_min": round(self.p90_abs_min, 2),
                "erreur_mediane_min": round(self.median_error_min, 2),
                "meme_cote": {f"{t:g}": round(v, 4) for t, v in self.same_side.items()}}


def score(real: np.ndarray, estimate: np.ndarray) -> Scores:
    """Return the :class:`Scores` of ``estimate`` against ``real`` (minutes, finite pairs)."""
    ok = np.isfinite(real) & np.isfinite(estimate)
    r, e = real[ok], estimate[ok]
    if r.shape[0] == 0:
        return Scores(0, float("nan"), float("nan"), float("nan"),
                      {t: float("nan") for t in SIDES_MIN})
    err = e - r
    return Scores(int(r.shape[0]), float(np.median(np.abs(err))),
                  float(np.percentile(np.abs(err), 90)), float(np.median(err)),
                  {t: float(np.mean((r <= t) == (e <= t))) for t in SIDES_MIN})


def pick_sites(points: CalibrationPoints, n: int = N_SITES,
               spacing_km: float = SITE_SPACING_KM) -> np.ndarray:
    """Return ``n`` site indices: the most populous points at least ``spacing_km`` apart.

    Ties of population are broken by code. Fewer than ``n`` when the points run out.
    """
    order = np.lexsort((points.codes.astype(str), -points.population))
    chosen: list[int] = []
    for i in order:
        if all(points.straight_km(np.array([i]), np.array([j]))[0] >= spacing_km
               for j in chosen):
            chosen.append(int(i))
        if len(chosen) == n:
            break
    return np.array(chosen, dtype=np.int64)


@dataclass(frozen=True)
class Calibration:
    """Result of :func:`calibrate`.

    Attributes
    ----------
    settings
        The fitted settings.
    source
        Where the real times come from.
    n_points, n_fit_points
        Communes, and those of the fit half.
    n_fit_pairs
        Pairs the fit used.
    scores
        ``(model, subset)`` → :class:`Scores`; models ``ancien`` (previous proxy) and
        ``calibre``; subsets ``paires`` (all check pairs), ``paires_50km`` (check pairs
        within :data:`FIT_MAX_STRAIGHT_KM`), ``sites`` (check commune → nearest site).
    sites
        Names of the sites.
    n_timed_points
        Communes with at least one real time (others are off the road graph or absent
        from the table).
    levels_fitted
        Density levels whose access time was fitted (the others keep their value).
    far_speed_fitted
        False when no fit pair is longer than the break (the far speed keeps its value).
    fictif
        True when every commune code is a fictional demo code (``Z…``).
    """

    settings: Settings
    source: str
    n_points: int
    n_fit_points: int
    n_fit_pairs: int
    scores: Mapping[tuple[str, str], Scores]
    sites: tuple[str, ...]
    n_timed_points: int = 0
    levels_fitted: tuple[int, ...] = _DENSITY_LEVELS
    far_speed_fitted: bool = True
    fictif: bool = False

    def fitted(self) -> dict[str, Any]:
        """Return the fitted settings as JSON-ready overrides."""
        s = self.settings
        return {"proxy_detour_factor": s.proxy_detour_factor,
                "proxy_access_min_by_density": {str(k): v for k, v in
                                                s.proxy_access_min_by_density.items()},
                "proxy_speed_near_kmh": s.proxy_speed_near_kmh,
                "proxy_speed_far_kmh": s.proxy_speed_far_kmh,
                "proxy_speed_break_km": s.proxy_speed_break_km}


def _site_minutes(minutes: np.ndarray, pairs: PairTimes, origins: np.ndarray,
                  sites: np.ndarray, n_points: int) -> np.ndarray:
    """Return, per origin, the minimum of ``minutes`` over its pairs to the sites (NaN none)."""
    best = np.full(n_points, np.inf)
    to_site = np.isin(pairs.destination, sites) & np.isin(pairs.origin, origins)
    np.minimum.at(best, pairs.origin[to_site], minutes[to_site])
    out = np.asarray(best[origins], dtype=np.float64)
    out[~np.isfinite(out)] = np.nan
    return out


def calibrate(points: CalibrationPoints, pairs: PairTimes,
              settings: Settings = Settings()) -> Calibration:
    """Fit the proxy on the fit half, score it and the previous proxy on the check half.

    Parameters
    ----------
    points
        The commune points (metric CRS, density levels).
    pairs
        Real minutes between them (origin → destination).
    settings
        Starting settings (detour kept).

    Returns
    -------
    Calibration
    """
    half = split_halves(points.codes)
    straight = points.straight_km(pairs.origin, pairs.destination)
    near = straight <= FIT_MAX_STRAIGHT_KM
    fit_pairs = half[pairs.origin] & half[pairs.destination] & near
    check = ~half[pairs.origin] & ~half[pairs.destination]
    fitted = fit_proxy(points, pairs, fit_pairs, settings)
    dens_o, dens_d = points.densite[pairs.origin], points.densite[pairs.destination]
    models = {"ancien": baseline_minutes(straight, dens_o),
              "calibre": trip_minutes(straight, dens_o, dens_d, fitted)}
    sites = pick_sites(points)
    origins = np.setdiff1d(np.flatnonzero(~half), sites)
    real_sites = _site_minutes(pairs.minutes, pairs, origins, sites, len(points))
    short = check & near
    scores: dict[tuple[str, str], Scores] = {}
    for name, est in models.items():
        scores[(name, "paires")] = score(pairs.minutes[check], est[check])
        scores[(name, "paires_50km")] = score(pairs.minutes[short], est[short])
        scores[(name, "sites")] = score(real_sites, _site_minutes(est, pairs, origins, sites,
                                                                   len(points)))
    timed = np.union1d(pairs.origin, pairs.destination)
    ends = np.concatenate([dens_o[fit_pairs], dens_d[fit_pairs]])
    return Calibration(fitted, pairs.source, len(points), int(half.sum()),
                       int(fit_pairs.sum()), scores,
                       tuple(str(points.names[i]) for i in sites), int(timed.shape[0]),
                       tuple(int(k) for k in np.unique(ends)),
                       bool((straight[fit_pairs] * settings.proxy_detour_factor
                             > BREAK_KM).any()),
                       all(is_fictional_code(str(c)) for c in points.codes))


def _fr(value: float, digits: int = 1) -> str:
    """Return a number with a decimal comma."""
    return f"{value:.{digits}f}".replace(".", ",")


_SUBSETS = {"paires": "paires de la moitié de contrôle",
            "paires_50km": f"paires de contrôle à ≤ {FIT_MAX_STRAIGHT_KM:g} km à vol d'oiseau "
                           "(domaine de l'ajustement)",
            "sites": "commune de contrôle → le plus proche des sites"}
_MODELS = {"ancien": "proxy précédent (vol d'oiseau × 1,3 ÷ 30/45/60/65 km/h)",
           "calibre": "proxy calibré"}


def report_lines(cal: Calibration) -> list[str]:
    """Return the French report of a calibration (one figure set per model and subset)."""
    s = cal.settings
    access = ", ".join(f"{k} : {_fr(v)} min" for k, v in s.proxy_access_min_by_density.items())
    kept = [str(k) for k in _DENSITY_LEVELS if k not in cal.levels_fitted]
    lines = [f"Calibration du proxy sur {cal.source} : {cal.n_points} communes "
             f"({cal.n_timed_points} avec des temps réels), dont {cal.n_fit_points} dans la "
             f"moitié d'ajustement ({cal.n_fit_pairs} paires à ≤ "
             f"{FIT_MAX_STRAIGHT_KM:g} km).",
             f"Paramètres ajustés : détour {_fr(s.proxy_detour_factor, 2)} (fixé), temps "
             f"d'accès par extrémité selon la densité ({access}), vitesse "
             f"{_fr(s.proxy_speed_near_kmh)} km/h sur les {_fr(s.proxy_speed_break_km, 0)} "
             f"premiers km de route puis {_fr(s.proxy_speed_far_kmh)} km/h.",
             "Sites : " + ", ".join(cal.sites) + "."]
    if cal.fictif:
        lines.insert(0, f"{FICTIONAL_TITLE} : communes aux codes fictifs « Z… », aucune "
                        "donnée réelle")
    if not cal.far_speed_fitted:
        lines.append(f"Aucune paire d'ajustement au-delà de {BREAK_KM:g} km de route : "
                     "vitesse lointaine gardée.")
    if kept:
        lines.append("Niveaux de densité absents de l'ajustement (temps d'accès gardé) : "
                     + ", ".join(kept) + ".")
    for subset, label in _SUBSETS.items():
        lines.append(f"{label[0].upper()}{label[1:]} :")
        for model, mlabel in _MODELS.items():
            sc = cal.scores[(model, subset)]
            sides = ", ".join(f"{_fr(100 * v)} % à {t:g} min" for t, v in sc.same_side.items())
            lines.append(f"  {mlabel} — {sc.n} temps, erreur absolue médiane "
                         f"{_fr(sc.median_abs_min)} min, p90 {_fr(sc.p90_abs_min)} min, "
                         f"biais médian {_fr(sc.median_error_min)} min ; même côté : {sides}")
    return lines


def settings_document(cal: Calibration) -> dict[str, Any]:
    """Return the settings file of a calibration (``run --settings FILE`` reads ``settings``)."""
    return {
        "settings": cal.fitted(),
        "calibration": {
            "source": cal.source, "fictif": cal.fictif, "communes": cal.n_points,
            "communes_avec_temps": cal.n_timed_points,
            "niveaux_ajustes": list(cal.levels_fitted),
            "vitesse_lointaine_ajustee": cal.far_speed_fitted,
            "communes_ajustement": cal.n_fit_points, "paires_ajustement": cal.n_fit_pairs,
            "sites": list(cal.sites),
            "scores": {f"{m}/{s}": sc.record() for (m, s), sc in cal.scores.items()},
            "methode": "coverage.calibration (docs/calibration.md)",
        },
    }


def pairs_from_engine(engine: Engine, frame: pd.DataFrame, points: CalibrationPoints, *,
                      cutoff_min: float, source: str) -> PairTimes:
    """Time every pair of commune points with an engine's bounded matrix (road graph).

    Parameters
    ----------
    engine
        A road engine (:func:`coverage.routing.make_engine`); its ``matrix`` gives the
        family's direction, origin commune → destination, connector legs included.
    frame
        The points: ``code_insee``, ``lon``, ``lat`` (EPSG:4326), in the order of ``points``.
    points
        The same points.
    cutoff_min
        Longest time kept, minutes (longer pairs are left out of the fit and the figures).
    source
        Name of the times (e.g. the road file's name).
    """
    com = pd.DataFrame({"code_insee": frame["code_insee"].astype(str).to_numpy(dtype=object),
                        "lon": frame["lon"].to_numpy(np.float64),
                        "lat": frame["lat"].to_numpy(np.float64)})
    svc = com.rename(columns={"code_insee": "service_id"}).assign(type_service="commune")
    mat = engine.matrix(com, svc, cutoff_min=cutoff_min)  # type: ignore[arg-type]
    index = {c: i for i, c in enumerate(points.codes)}
    o = mat["code_insee"].astype(str).map(index).to_numpy(np.int64)
    d = mat["service_id"].astype(str).map(index).to_numpy(np.int64)
    keep = o != d
    return PairTimes(o[keep], d[keep], mat["minutes"].to_numpy(np.float64)[keep], source)


#: Accepted names of the columns of a points file.
POINT_ALIASES: Mapping[str, tuple[str, ...]] = {
    "code_insee": ("insee", "code", "codgeo", "id", "code_commune"),
    "nom": ("name", "libelle", "nom_commune"),
    "densite": ("dens4", "dens", "densite_4", "niveau_densite"),
    "population": ("pop", "pmun", "population_municipale"),
    "lon": ("longitude", "x", "lng"),
    "lat": ("latitude", "y"),
}


def read_points(path: str | Path, *, densite: str | Path | None = None,
                settings: Settings = Settings()) -> pd.DataFrame:
    """Read commune points for a calibration: code, lon/lat (EPSG:4326), density level.

    Parameters
    ----------
    path
        CSV/XLSX/Parquet/GeoJSON with ``code_insee`` (or ``insee``, ``code`` …), ``lon``,
        ``lat`` (degrees; a point geometry is also read), ``densite`` (1–4) unless
        ``densite`` is given, optionally ``nom`` and ``population``.
    densite
        INSEE density grid (``code_insee`` + ``dens4``/``densite``), joined on the codes
        mapped to the current COG (:func:`coverage.cog.harmonise_codes`: older codes, e.g.
        those of 2021, are followed through the table de passage).
    settings
        ``max_input_bytes``.

    Returns
    -------
    pandas.DataFrame
        ``code_insee`` (as in the file), ``nom``, ``lon``, ``lat``, ``densite``,
        ``population``.

    Raises
    ------
    InputError
        A missing column, or a code without a density level (one line per row).
    """
    raw = read_table(path, max_bytes=settings.max_input_bytes)
    frame = pd.DataFrame(raw.drop(columns="geometry", errors="ignore"))
    if "geometry" in raw.columns and "lon" not in frame.columns:
        pts = raw.geometry.representative_point()
        frame["lon"], frame["lat"] = pts.x.to_numpy(), pts.y.to_numpy()
    frame, _ = rename_aliases(frame, POINT_ALIASES, file=Path(path).name)
    require_columns(frame, ("code_insee", "lon", "lat"), file=Path(path).name)
    frame["code_insee"] = frame["code_insee"].astype(str).str.strip()
    if densite is not None:
        frame["densite"] = _grid_levels(frame["code_insee"], densite, settings)
    require_columns(frame, ("densite",), file=Path(path).name)
    for col in ("lon", "lat", "densite", "population"):
        if col in frame.columns:
            frame[col] = to_number(frame[col])
    problems = ProblemList(Path(path).name)
    problems.add_rows(~frame["densite"].isin(_DENSITY_LEVELS).to_numpy(), "densite",
                      "un niveau de densité INSEE (1 à 4)", frame["densite"])
    problems.raise_if_any()
    if "nom" not in frame.columns:
        frame["nom"] = frame["code_insee"]
    if "population" not in frame.columns:
        frame["population"] = 0.0
    return pd.DataFrame(frame[["code_insee", "nom", "lon", "lat", "densite", "population"]])


def _grid_levels(codes: pd.Series, densite: str | Path, settings: Settings) -> pd.Series:
    """Return the density level of each code from an INSEE grid (codes mapped to the COG)."""
    grid = pd.DataFrame(read_table(densite, max_bytes=settings.max_input_bytes))
    grid, _ = rename_aliases(grid, {"code_insee": POINT_ALIASES["code_insee"],
                                    "densite": POINT_ALIASES["densite"]},
                             file=Path(densite).name)
    require_columns(grid, ("code_insee", "densite"), file=Path(densite).name)
    levels = dict(zip(normalise_codes(grid["code_insee"]), to_number(grid["densite"]),
                      strict=True))
    current = harmonise_codes(codes, file="communes", problems=ProblemList("communes")).codes
    return current.map(levels).astype("float64")


#: INSEE-like density level given to an OSM ``place`` node (a documented assumption: no
#: INSEE grid outside France): towns intermediate, villages sparse, hamlets very sparse.
OSM_PLACE_DENSITY: Mapping[str, int] = {"city": 1, "suburb": 1, "town": 2, "village": 3,
                                        "hamlet": 4}


def osm_places(path: str | Path, *, places: Sequence[str] = ("city", "suburb", "town",
                                                             "village")) -> pd.DataFrame:
    """Return the named ``place`` nodes of an OSM file as calibration points.

    Outside France (Andorra, Monaco) there are no INSEE communes: the settlements mapped in
    OSM stand for them, with a density level from their ``place`` tag
    (:data:`OSM_PLACE_DENSITY`).

    Parameters
    ----------
    path
        OSM file (.osm, .osm.gz, .osm.bz2, .osm.pbf), read with pyosmium.
    places
        ``place`` values kept.

    Returns
    -------
    pandas.DataFrame
        ``code_insee`` (``OSM<node id>``), ``nom``, ``lon``, ``lat`` (EPSG:4326),
        ``densite``, ``population`` (the ``population`` tag, else 0).
    """
    import osmium

    rows = []
    proc = osmium.FileProcessor(str(path), osmium.osm.NODE).with_filter(
        osmium.filter.KeyFilter("place"))
    for node in proc:
        kind = str(node.tags.get("place") or "")
        if not isinstance(node, osmium.osm.Node) or kind not in places or \
                kind not in OSM_PLACE_DENSITY or not node.tags.get("name"):
            continue
        pop = pd.to_numeric(str(node.tags.get("population") or "0"), errors="coerce")
        rows.append({"code_insee": f"OSM{node.id}", "nom": node.tags.get("name"),
                     "lon": node.location.lon, "lat": node.location.lat,
                     "densite": OSM_PLACE_DENSITY[kind],
                     "population": 0.0 if pd.isna(pop) else float(pop)})
    return pd.DataFrame(rows, columns=["code_insee", "nom", "lon", "lat", "densite",
                                       "population"])


def extract_points(path: str | Path, communes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the calibration points of an OSM extract: its places, and communes inside it.

    The places are :func:`osm_places`; ``communes`` (``code_insee``, ``nom``, ``lon``,
    ``lat``, ``densite``, ``population``; e.g. the INSEE points with the density grid)
    are kept when their point lies in the box of the extract's nodes (EPSG:4326). Points
    off the extract's roads are left out later by the road engine (snap limit).

    Parameters
    ----------
    path
        OSM file.
    communes
        French commune points, or None.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`osm_places`.
    """
    import osmium

    places = osm_places(path)
    if communes is None or len(communes) == 0:
        return places
    lon_min = lat_min = np.inf
    lon_max = lat_max = -np.inf
    for node in osmium.FileProcessor(str(path), osmium.osm.NODE):
        if isinstance(node, osmium.osm.Node) and node.location.valid():
            lon, lat = node.location.lon, node.location.lat
            lon_min, lon_max = min(lon_min, lon), max(lon_max, lon)
            lat_min, lat_max = min(lat_min, lat), max(lat_max, lat)
    inside = (communes["lon"].between(lon_min, lon_max)
              & communes["lat"].between(lat_min, lat_max))
    cols = list(places.columns)
    return pd.concat([places, pd.DataFrame(communes.loc[inside, cols])], ignore_index=True)
