"""What changed between two runs: white zones, coverage, services (``zones-blanches comparer``).

Two runs on the same communes — last year's and this year's service lists, say — are read
back (:class:`coverage.results.RunOutputs`) and compared **on what they share**: the communes
present in both ``acces_communes`` tables, the service types of both, the thresholds of both.
Anything else (communes, types or thresholds of one run only, another engine, other engine
parameters, other populations) is left out or kept apart and said in a French warning.

* **Communes that change.** For each shared type (and the combined view ``aucun_service``
  over the shared types) and threshold, a commune is a white zone in a run by
  :func:`coverage.whitezones.is_white_zone` on that run's minutes; it *enters* when it is a
  white zone in B and not in A, *leaves* in the other case.
* **Coverage change** by département, EPCI and cour d'appel:
  :func:`coverage.whitezones.coverage_table` of each run on the shared communes, side by
  side (``_a``, ``_b``) with the change of the rate in points and of the white-zone
  population.
* **Services** added (in B only), removed (in A only) or changed (same ``service_id``,
  another type, name, commune, place or capacity), by ``service_id``.

:func:`write_comparison` writes the tables as CSV (UTF-8, with a Table Schema beside each:
:data:`coverage.schemas.COMPARAISON_CONTRACTS`), as CSV for French Excel (``*_fr.csv``) and
as one XLSX workbook (text made spreadsheet-safe, :mod:`coverage.safe_text`), a summary in
French (``LISEZMOI``) and a map:
one self-contained HTML page with Leaflet inlined (no CDN, no request at all), the communes
that change by type and threshold, and the services added or removed.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font

from coverage import maps
from coverage.errors import CoverageError
from coverage.export.csv_files import write_csv
from coverage.files import atomic_path, write_text_atomic
from coverage.io.writers import conform_to_contract
from coverage.labels import (
    CHANGE_ENTERING,
    CHANGE_LEAVING,
    FICTIONAL_BANNER,
    SERVICE_ADDED,
    SERVICE_CHANGED,
    SERVICE_REMOVED,
    engine_label,
    fr_decimal,
    fr_int,
    type_label,
)
from coverage.results import RunOutputs, run_service_types, run_thresholds
from coverage.safe_text import html_js_safe, spreadsheet_safe, spreadsheet_safe_frame
from coverage.schemas import COMPARAISON_CONTRACTS, table_schema
from coverage.settings import NO_SERVICE, REPO_ROOT
from coverage.whitezones import combined_access, coverage_table, is_white_zone

__all__ = [
    "CHANGE_COLUMNS",
    "COMPARISON_FILES",
    "LEVELS",
    "OUTLINE_MAX_COMMUNES",
    "SERVICE_COLUMNS",
    "RunComparison",
    "compare_runs",
    "comparison_map",
    "standalone_html",
    "write_comparison",
]

log = logging.getLogger(__name__)

#: Columns of :attr:`RunComparison.changes`.
CHANGE_COLUMNS: tuple[str, ...] = (
    "code_insee", "nom", "code_dep", "population", "type_service", "seuil_minutes",
    "changement", "minutes_a", "minutes_b",
)
#: Columns of :attr:`RunComparison.services`.
SERVICE_COLUMNS: tuple[str, ...] = (
    "service_id", "changement", "type_service", "nom", "code_insee", "code_dep",
    "capacite_a", "capacite_b", "detail",
)
#: Coverage levels compared: (key of :attr:`RunComparison.coverage`, level of
#: :func:`coverage.whitezones.coverage_table`, key columns).
LEVELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("departements", "departements", ("code_dep",)),
    ("epci", "epci", ("code_epci", "nom_epci")),
    ("cours_appel", "cours_appel", ("cour_appel",)),
)
#: Files written by :func:`write_comparison` (besides the CSV of each table).
COMPARISON_FILES = {"xlsx": "comparaison.xlsx", "carte": "comparaison_carte.html",
                    "resume": "LISEZMOI_comparaison.txt"}
#: Figures of the coverage tables set side by side.
_FIGURES = ("population", "population_couverte", "taux_couverture", "communes_zone_blanche",
            "population_zone_blanche")
#: Colours of the map: leaving (now covered) and entering white zones.
_LEAVING_COLOUR = "#1a9850"
_ENTERING_COLOUR = "#d73027"
#: Most communes drawn as context outlines on the map (beyond, none: the page stays light).
OUTLINE_MAX_COMMUNES = 5000
#: A place moved by less than this is the same place, degrees (≈ 1 m).
_SAME_PLACE_DEG = 1e-5


@dataclass
class RunComparison:
    """Result of :func:`compare_runs`.

    Attributes
    ----------
    run_a, run_b
        The two run folders (A the older, B the newer).
    engines
        Engines of A and B.
    communes
        Number of communes compared (in both runs).
    types
        Service types compared (those of both runs, then ``aucun_service``).
    thresholds
        Thresholds compared, minutes (those of both runs).
    changes
        Communes entering or leaving white zones (:data:`CHANGE_COLUMNS`); ``population``
        is run B's; minutes NaN = unreachable.
    coverage
        By level (``departements``, ``epci``, ``cours_appel``): keys, ``type_service``,
        ``seuil_minutes``, each figure of A and B (``_a``, ``_b``),
        ``variation_taux_points`` (percentage points) and
        ``variation_population_zone_blanche`` (inhabitants).
    services
        Services added, removed or changed (:data:`SERVICE_COLUMNS`).
    warnings
        French sentences: what was left out of the comparison and why.
    fictif
        True when either run is the fictional demo.
    """

    run_a: Path
    run_b: Path
    engines: tuple[str, str]
    communes: int
    types: list[str]
    thresholds: list[float]
    changes: pd.DataFrame
    coverage: dict[str, pd.DataFrame]
    services: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    fictif: bool = False

    def summary(self) -> list[str]:
        """Return the French summary: scope, changes per type and threshold, services."""
        lines = [f"Comparaison de deux calculs : A = {self.run_a} (moteur {self.engines[0]}), "
                 f"B = {self.run_b} (moteur {self.engines[1]}).",
                 f"Base commune : {fr_int(self.communes)} communes ; types : "
                 f"{', '.join(type_label(t) for t in self.types)} ; seuils : "
                 f"{', '.join(fr_decimal(t, 0) + ' min' for t in self.thresholds)}."]
        for t in self.types:
            for s in self.thresholds:
                lines.append(self._line(t, s))
        counts = self.services["changement"].value_counts()
        lines.append(f"Services : {counts.get(SERVICE_ADDED, 0)} ajouté(s), "
                     f"{counts.get(SERVICE_REMOVED, 0)} retiré(s), "
                     f"{counts.get(SERVICE_CHANGED, 0)} modifié(s)"
                     + self._service_names() + ".")
        lines.extend(f"Attention : {w}" for w in self.warnings)
        return lines

    def _line(self, type_service: str, threshold: float) -> str:
        """Return the summary line of one type and threshold."""
        c = self.changes
        sel = c[(c["type_service"] == type_service) & (c["seuil_minutes"] == threshold)]
        out = sel[sel["changement"] == CHANGE_LEAVING]
        into = sel[sel["changement"] == CHANGE_ENTERING]
        cov = self.coverage["departements"]
        cov = cov[(cov["type_service"] == type_service) & (cov["seuil_minutes"] == threshold)]
        pop_a = int(cov["population_zone_blanche_a"].fillna(0).sum())
        pop_b = int(cov["population_zone_blanche_b"].fillna(0).sum())
        return (f"- {type_label(type_service)} à {fr_decimal(threshold, 0)} min : "
                f"{len(out)} commune(s) sortent de la zone blanche "
                f"({fr_int(out['population'].sum())} hab.), {len(into)} y entrent "
                f"({fr_int(into['population'].sum())} hab.) ; population en zone blanche "
                f"{fr_int(pop_a)} → {fr_int(pop_b)} ({_signed(pop_b - pop_a)}).")

    def _service_names(self) -> str:
        """Return « : MF-07 (ajouté), … » for up to five services, else ''."""
        s = self.services
        if s.empty:
            return ""
        shown = [f"{sid} ({ch})" for sid, ch in zip(s["service_id"].head(5),
                                                     s["changement"].head(5), strict=True)]
        more = f" et {len(s) - 5} autre(s)" if len(s) > 5 else ""
        return " : " + ", ".join(shown) + more


def _signed(value: float) -> str:
    """Return a whole number with its sign, in French (« +1 234 », « −56 », « 0 »)."""
    if value > 0:
        return f"+{fr_int(value)}"
    if value < 0:
        return f"−{fr_int(-value)}"
    return "0"


# --- the comparison -----------------------------------------------------------------------


def _access(run: RunOutputs) -> pd.DataFrame:
    """Return the run's ``acces_communes`` (codes as str), or raise when it has none."""
    acc = run.tables.get("acces_communes")
    if acc is None:
        msg = f"le calcul {run.run_dir} n'a pas de table acces_communes : relancez-le"
        raise CoverageError(msg)
    acc = acc[acc["type_service"].astype(str) != NO_SERVICE].copy()
    acc["code_insee"] = acc["code_insee"].astype(str)
    acc["type_service"] = acc["type_service"].astype(str)
    return acc


@dataclass(frozen=True)
class _Scope:
    """What the two runs share: communes, types, thresholds."""

    codes: pd.Index
    types: list[str]
    thresholds: list[float]


def _scope(a: RunOutputs, b: RunOutputs, acc_a: pd.DataFrame, acc_b: pd.DataFrame,
           warnings: list[str]) -> _Scope:
    """Return the shared scope; add a warning for each thing left out; raise when empty."""
    codes_a, codes_b = set(acc_a["code_insee"]), set(acc_b["code_insee"])
    shared = codes_a & codes_b
    if not shared:
        msg = (f"les calculs {a.run_dir} et {b.run_dir} n'ont aucune commune en commun : "
               "rien à comparer")
        raise CoverageError(msg)
    if codes_a != codes_b:
        warnings.append(
            f"Les deux calculs n'ont pas les mêmes communes : comparaison sur les "
            f"{fr_int(len(shared))} communes communes ({fr_int(len(codes_a - shared))} "
            f"seulement dans A, {fr_int(len(codes_b - shared))} seulement dans B, "
            "laissées de côté).")
    types_a, types_b = run_service_types(a), run_service_types(b)
    types = [t for t in types_a if t in types_b]
    if not types:
        msg = (f"les calculs {a.run_dir} et {b.run_dir} n'ont aucun type de service en "
               "commun : rien à comparer")
        raise CoverageError(msg)
    if set(types_a) != set(types_b):
        alone = sorted(set(types_a) ^ set(types_b))
        warnings.append("Types de service d'un seul calcul, laissés de côté : "
                        + ", ".join(type_label(t) for t in alone) + ".")
    th_a, th_b = run_thresholds(a), run_thresholds(b)
    thresholds = [t for t in th_a if t in th_b]
    if not thresholds:
        msg = (f"les calculs {a.run_dir} et {b.run_dir} n'ont aucun seuil en commun "
               f"({', '.join(f'{t:g}' for t in th_a)} min contre "
               f"{', '.join(f'{t:g}' for t in th_b)} min) : rien à comparer")
        raise CoverageError(msg)
    if set(th_a) != set(th_b):
        alone_t = sorted(set(th_a) ^ set(th_b))
        warnings.append("Seuils d'un seul calcul, laissés de côté : "
                        + ", ".join(f"{fr_decimal(t, 0)} min" for t in alone_t) + ".")
    return _Scope(pd.Index(sorted(shared)), types, thresholds)


def _engine_warnings(a: RunOutputs, b: RunOutputs) -> list[str]:
    """Return warnings when the runs were timed differently (engine, data, parameters)."""
    out = []
    if a.engine != b.engine:
        out.append(f"Les temps viennent de deux moteurs différents (A : {a.engine}, "
                   f"{engine_label(a.engine, short=True)} ; B : {b.engine}, "
                   f"{engine_label(b.engine, short=True)}) : une commune peut changer de "
                   "statut par le seul changement de méthode.")
    pa = (a.manifest.get("engine") or {}).get("parameters") or {}
    pb = (b.manifest.get("engine") or {}).get("parameters") or {}
    for key, what in (("reseau_sha256", "réseau routier"), ("sha256", "tableau de temps")):
        if a.engine == b.engine and pa.get(key) and pb.get(key) and pa[key] != pb[key]:
            out.append(f"Le {what} diffère entre les deux calculs : les temps changent aussi "
                       "pour cette raison, pas seulement par les services.")
    sa, sb = a.manifest.get("parameters") or {}, b.manifest.get("parameters") or {}
    ignored = {"thresholds_min", "service_types", "max_input_bytes", "secrecy_threshold"}
    differ = sorted(k for k in set(sa) | set(sb) if k not in ignored and sa.get(k) != sb.get(k))
    if differ:
        out.append("Paramètres de calcul différents entre A et B (" + ", ".join(differ)
                   + ") : les temps changent aussi pour cette raison.")
    return out


def _restricted(acc: pd.DataFrame, scope: _Scope) -> pd.DataFrame:
    """Return the access rows of the shared communes and types (combined view added)."""
    rows = acc[acc["code_insee"].isin(scope.codes) & acc["type_service"].isin(scope.types)]
    rows = rows.reset_index(drop=True)
    return pd.concat([rows, combined_access(rows)], ignore_index=True)


def _changes(acc_a: pd.DataFrame, acc_b: pd.DataFrame, scope: _Scope) -> pd.DataFrame:
    """Return the communes entering or leaving white zones (:data:`CHANGE_COLUMNS`)."""
    key = ["code_insee", "type_service"]
    a = acc_a[[*key, "minutes"]].drop_duplicates(key)
    b = acc_b[[*key, "nom", "code_dep", "population", "minutes"]].drop_duplicates(key)
    both = a.merge(b, on=key, how="outer", suffixes=("_a", "_b"))
    names = pd.concat([acc_b, acc_a]).drop_duplicates("code_insee").set_index("code_insee")
    for col in ("nom", "code_dep", "population"):
        both[col] = both[col].where(both[col].notna(), both["code_insee"].map(names[col]))
    m_a = both["minutes_a"].to_numpy(dtype=np.float64)
    m_b = both["minutes_b"].to_numpy(dtype=np.float64)
    parts = []
    for t in scope.thresholds:
        white_a, white_b = is_white_zone(m_a, t), is_white_zone(m_b, t)
        moved = white_a != white_b
        part = both[moved].copy()
        part["seuil_minutes"] = t
        part["changement"] = np.where(white_b[moved], CHANGE_ENTERING, CHANGE_LEAVING)
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    order = {t: i for i, t in enumerate([*scope.types, NO_SERVICE])}
    out["_t"] = out["type_service"].map(order)
    out["population"] = out["population"].astype("int64")
    out = out.sort_values(["_t", "seuil_minutes", "changement", "code_insee"],
                          kind="mergesort")
    return out[list(CHANGE_COLUMNS)].reset_index(drop=True)


def _coverage(acc_a: pd.DataFrame, acc_b: pd.DataFrame, a: RunOutputs, b: RunOutputs,
              scope: _Scope) -> dict[str, pd.DataFrame]:
    """Return the coverage of A and B side by side at each level of :data:`LEVELS`."""
    out: dict[str, pd.DataFrame] = {}
    for name, level, keys in LEVELS:
        if level == "epci" and not all("code_epci" in r.communes for r in (a, b)):
            log.info("no EPCI in one of the runs: coverage by EPCI not compared")
            continue
        tables = []
        for acc, run in ((acc_a, a), (acc_b, b)):
            com = pd.DataFrame(run.communes.drop(columns="geometry", errors="ignore"))
            com["code_insee"] = com["code_insee"].astype(str)
            t = coverage_table(acc, com, scope.thresholds, level)
            tables.append(t[[*keys, "type_service", "seuil_minutes", *_FIGURES]])
        on = [*keys, "type_service", "seuil_minutes"]
        both = tables[0].merge(tables[1], on=on, how="outer", suffixes=("_a", "_b"))
        both["variation_taux_points"] = 100.0 * (both["taux_couverture_b"]
                                                 - both["taux_couverture_a"])
        both["variation_population_zone_blanche"] = (both["population_zone_blanche_b"]
                                                     - both["population_zone_blanche_a"])
        out[name] = both.reset_index(drop=True)
    return out


def _service_frame(run: RunOutputs) -> pd.DataFrame:
    """Return the run's services without geometry, ids as str."""
    s = pd.DataFrame(run.services.drop(columns="geometry", errors="ignore")).copy()
    s["service_id"] = s["service_id"].astype(str)
    for col in ("nom", "code_insee", "code_dep", "lon", "lat", "capacite"):
        if col not in s.columns:
            s[col] = np.nan
    return s.drop_duplicates("service_id").set_index("service_id")


def _differences(ra: pd.Series, rb: pd.Series) -> list[str]:
    """Return the French names of what differs between two rows of one service."""
    diff = [label for col, label in (("type_service", "type"), ("nom", "nom"),
                                     ("code_insee", "commune"))
            if str(ra[col]) != str(rb[col])]
    lon_lat = [(float(ra[c]), float(rb[c])) for c in ("lon", "lat")]
    if any(abs(x - y) > _SAME_PLACE_DEG for x, y in lon_lat if math.isfinite(x + y)):
        diff.append("emplacement")
    ca, cb = pd.to_numeric(ra["capacite"], errors="coerce"), \
        pd.to_numeric(rb["capacite"], errors="coerce")
    if not (pd.isna(ca) and pd.isna(cb)) and (pd.isna(ca) or pd.isna(cb) or ca != cb):
        diff.append("capacité")
    return diff


def _services(a: RunOutputs, b: RunOutputs, scope: _Scope) -> pd.DataFrame:
    """Return the services added, removed or changed (:data:`SERVICE_COLUMNS`).

    Every service of the two runs' lists of the shared types counts, wherever it is: a
    service across a border changes the access of the communes near it.
    """
    sa, sb = _service_frame(a), _service_frame(b)
    sa = sa[sa["type_service"].astype(str).isin(scope.types)]
    sb = sb[sb["type_service"].astype(str).isin(scope.types)]
    rows: list[dict[str, Any]] = []
    for sid in sorted(set(sa.index) | set(sb.index)):
        in_a, in_b = sid in sa.index, sid in sb.index
        row = sb.loc[sid] if in_b else sa.loc[sid]
        if in_a and in_b:
            diff = _differences(sa.loc[sid], sb.loc[sid])
            if not diff:
                continue
            change, detail = SERVICE_CHANGED, ", ".join(diff)
        else:
            change, detail = (SERVICE_ADDED, "") if in_b else (SERVICE_REMOVED, "")
        rows.append({"service_id": sid, "changement": change,
                     "type_service": row["type_service"], "nom": row["nom"],
                     "code_insee": row["code_insee"], "code_dep": row["code_dep"],
                     "capacite_a": sa.loc[sid, "capacite"] if in_a else np.nan,
                     "capacite_b": sb.loc[sid, "capacite"] if in_b else np.nan,
                     "detail": detail})
    out = pd.DataFrame(rows, columns=list(SERVICE_COLUMNS))
    return out.astype({"capacite_a": np.float64, "capacite_b": np.float64})


def compare_runs(a: RunOutputs, b: RunOutputs) -> RunComparison:
    """Compare two finished runs on what they share (see the module docstring).

    Parameters
    ----------
    a, b
        The runs, A the older and B the newer (the population of B is shown).

    Returns
    -------
    RunComparison
        Communes that change, coverage side by side, services, French warnings.

    Raises
    ------
    CoverageError
        The runs share no commune, no service type or no threshold (one French line).
    """
    warnings: list[str] = []
    acc_a, acc_b = _access(a), _access(b)
    scope = _scope(a, b, acc_a, acc_b, warnings)
    warnings.extend(_engine_warnings(a, b))
    ra, rb = _restricted(acc_a, scope), _restricted(acc_b, scope)
    pop = ra.drop_duplicates("code_insee").set_index("code_insee")["population"]
    pop_b = rb.drop_duplicates("code_insee").set_index("code_insee")["population"]
    moved = int((pop.reindex(pop_b.index) != pop_b).sum())
    if moved:
        warnings.append(f"Les populations diffèrent pour {fr_int(moved)} commune(s) : chaque "
                        "calcul est compté avec ses populations ; les listes de communes "
                        "donnent celles de B.")
    return RunComparison(
        run_a=a.run_dir, run_b=b.run_dir, engines=(a.engine, b.engine),
        communes=len(scope.codes), types=[*scope.types, NO_SERVICE],
        thresholds=scope.thresholds, changes=_changes(ra, rb, scope),
        coverage=_coverage(ra, rb, a, b, scope), services=_services(a, b, scope),
        warnings=warnings, fictif=a.fictif or b.fictif)


# --- the map --------------------------------------------------------------------------------


def _vendor(path: str) -> str:
    """Return the text of a vendored file of ``static/`` (Leaflet, jQuery)."""
    return (REPO_ROOT / "static" / path).read_text(encoding="utf-8")


def _inline_css(css: str, folder: str) -> str:
    """Return Leaflet's CSS with its images as ``data:`` URIs (``url(images/…)``)."""
    def data_uri(match: re.Match[str]) -> str:
        image = REPO_ROOT / "static" / folder / match.group(1)
        if not image.is_file():
            return "none"
        encoded = base64.b64encode(image.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{encoded})"

    return re.sub(r"url\((images/[\w.-]+\.png)\)", data_uri, css)


def standalone_html(m: folium.Map) -> str:
    """Return the page of a :func:`coverage.maps.offline_map` map with Leaflet inlined.

    The page loads nothing from anywhere (no CDN, no local server): Leaflet, its CSS (images
    as ``data:`` URIs) and jQuery are written into it. Build the map with
    ``static_url=""``.

    Raises
    ------
    ValueError
        The page would still load a file from another host
        (:func:`coverage.maps.map_html`).
    """
    page = maps.map_html(m)
    for _name, path in maps.VENDOR_JS:
        page = page.replace(f'<script src="/{path}"></script>',
                            f"<script>{_vendor(path)}</script>")
    for _name, path in maps.VENDOR_CSS:
        css = _inline_css(_vendor(path), str(Path(path).parent))
        page = page.replace(f'<link rel="stylesheet" href="/{path}"/>', f"<style>{css}</style>")
    return page


def _outline_layer(communes: gpd.GeoDataFrame, depts: set[str]) -> folium.FeatureGroup:
    """Return thin outlines of the communes of ``depts``, for context.

    None are drawn beyond :data:`OUTLINE_MAX_COMMUNES` communes.
    """
    layer = folium.FeatureGroup(name="Communes (contours)", show=True)
    base = communes[communes["code_dep"].astype(str).isin(depts)]
    if 0 < len(base) <= OUTLINE_MAX_COMMUNES:
        outlines = maps.display_geometries(base[["code_dep", "geometry"]].reset_index(drop=True))
        folium.GeoJson(outlines[["geometry"]],
                       style_function=lambda f: {"fillOpacity": 0.0, "color": "#888888",
                                                 "weight": 0.5, "interactive": False},
                       ).add_to(layer)
    return layer


def _change_layer(geoms: gpd.GeoDataFrame, rows: pd.DataFrame, name: str, *, show: bool
                  ) -> folium.FeatureGroup:
    """Return the layer of the communes that change for one type and threshold."""
    layer = folium.FeatureGroup(name=name, show=show)
    feats = geoms[["code_insee", "geometry"]].merge(rows, on="code_insee", how="inner")
    if len(feats):
        feats["txt"] = [html_js_safe(f"{n} ({c}) : {ch}, {fr_int(p)} hab.")
                        for n, c, ch, p in zip(feats["nom"], feats["code_insee"],
                                               feats["changement"], feats["population"],
                                               strict=True)]
        feats["_colour"] = np.where(feats["changement"] == CHANGE_ENTERING, _ENTERING_COLOUR,
                                    _LEAVING_COLOUR)
        folium.GeoJson(
            feats[["txt", "_colour", "geometry"]].reset_index(drop=True),
            style_function=lambda f: {"fillColor": f["properties"]["_colour"],
                                      "fillOpacity": 0.7, "color": "#333", "weight": 1,
                                      "className": "commune-changee"},
            tooltip=folium.GeoJsonTooltip(fields=["txt"], labels=False),
        ).add_to(layer)
    return layer


def _service_layer(services: pd.DataFrame, run_a: RunOutputs, run_b: RunOutputs
                   ) -> folium.FeatureGroup:
    """Return the layer of the services added (green) and removed (red)."""
    layer = folium.FeatureGroup(name="Services ajoutés ou retirés", show=True)
    pts = pd.concat([_service_frame(run_b), _service_frame(run_a)])
    pts = pts[~pts.index.duplicated()]
    lons = pd.to_numeric(pts["lon"], errors="coerce")
    lats = pd.to_numeric(pts["lat"], errors="coerce")
    for row in services.to_dict("records"):
        sid = str(row["service_id"])
        if sid not in pts.index:
            continue
        lon, lat = float(lons[sid]), float(lats[sid])
        if not math.isfinite(lon + lat):
            continue
        change = str(row["changement"])
        colour = {SERVICE_ADDED: _LEAVING_COLOUR, SERVICE_REMOVED: _ENTERING_COLOUR}.get(
            change, "#555555")
        detail = f" ({row['detail']})" if row["detail"] else ""
        folium.CircleMarker(
            location=[lat, lon], radius=8, color="#ffffff", weight=2, fill=True,
            fill_color=colour, fill_opacity=1.0, class_name="service-change",
            tooltip=html_js_safe(f"{row['nom']} ({sid}) : {change}{detail}"),
        ).add_to(layer)
    return layer


def _legend(cmp: RunComparison) -> str:
    """Return the HTML legend of the comparison map."""
    swatch = ("display:inline-block;width:12px;height:9px;border:1px solid #555;"
              "margin-right:4px;vertical-align:middle")
    fict = (f'<div style="color:#b00;font-weight:bold">{html_js_safe(FICTIONAL_BANNER)}</div>'
            if cmp.fictif else "")
    return (
        '<div id="zb-legend" style="position:fixed;bottom:22px;right:8px;z-index:1000;'
        "background:rgba(255,255,255,.92);padding:5px 8px;border:1px solid #999;"
        'border-radius:4px;font:11px/1.3 sans-serif;max-width:260px">'
        f"<b>Comparaison de deux calculs</b>{fict}"
        f'<div><span style="{swatch};background:{_LEAVING_COLOUR}"></span>'
        f"{html_js_safe(CHANGE_LEAVING)}</div>"
        f'<div><span style="{swatch};background:{_ENTERING_COLOUR}"></span>'
        f"{html_js_safe(CHANGE_ENTERING)}</div>"
        "<div>Une couche par type et seuil (menu des couches) ; points : services ajoutés "
        "(vert) ou retirés (rouge).</div>"
        f"<div style=\"color:#555\">Moteurs : A {html_js_safe(cmp.engines[0])}, "
        f"B {html_js_safe(cmp.engines[1])}.</div></div>"
    )


def _default_view(cmp: RunComparison) -> tuple[str, float]:
    """Return the type and threshold shown first: the first type, 30 min when compared."""
    threshold = 30.0 if 30.0 in cmp.thresholds else cmp.thresholds[len(cmp.thresholds) // 2]
    return cmp.types[0], threshold


def comparison_map(cmp: RunComparison, a: RunOutputs, b: RunOutputs, *,
                   static_url: str = maps.STATIC_URL) -> folium.Map:
    """Draw the communes that change (one layer per type and threshold) and the services.

    Parameters
    ----------
    cmp
        :func:`compare_runs`' result.
    a, b
        The runs compared (B's polygons are drawn, A's for communes B lacks).
    static_url
        URL prefix of the vendored Leaflet (``""`` for :func:`standalone_html`).

    Returns
    -------
    folium.Map
        Polygons of class ``commune-changee``, markers of class ``service-change``.
    """
    changed = set(cmp.changes["code_insee"])
    polys = pd.concat([b.communes, a.communes], ignore_index=True)
    polys = polys[polys["code_insee"].astype(str).isin(changed)].drop_duplicates("code_insee")
    geoms = maps.display_geometries(gpd.GeoDataFrame(
        polys[["code_insee", "code_dep", "geometry"]].assign(
            code_insee=polys["code_insee"].astype(str)), crs=b.communes.crs))
    shown = geoms if len(geoms) else b.communes
    bounds = list(shown.total_bounds) if len(shown) else [-5.3, 41.2, 9.7, 51.2]
    m = maps.offline_map(bounds, static_url=static_url)
    _outline_layer(b.communes, set(cmp.changes["code_dep"].astype(str))).add_to(m)
    first = _default_view(cmp)
    for t in cmp.types:
        for s in cmp.thresholds:
            rows = cmp.changes[(cmp.changes["type_service"] == t)
                               & (cmp.changes["seuil_minutes"] == s)]
            name = f"{type_label(t)} — {fr_decimal(s, 0)} min ({len(rows)} commune(s))"
            _change_layer(geoms, rows, name, show=(t, s) == first).add_to(m)
    if len(cmp.services):
        _service_layer(cmp.services, a, b).add_to(m)
    m.get_root().html.add_child(folium.Element(_legend(cmp)))  # type: ignore[attr-defined]
    return m


# --- writing ----------------------------------------------------------------------------------


def _tables(cmp: RunComparison) -> dict[str, pd.DataFrame]:
    """Return the tables written, by file stem, typed by their contracts."""
    out = {"comparaison_communes": cmp.changes}
    out.update({f"comparaison_{name}": t for name, t in cmp.coverage.items()})
    out["comparaison_services"] = cmp.services
    return {stem: conform_to_contract(t, COMPARAISON_CONTRACTS[stem])
            for stem, t in out.items()}


def _write_tables(tables: Mapping[str, pd.DataFrame], folder: Path) -> list[str]:
    """Write each table as CSV, its Table Schema and its French-Excel CSV; return the names."""
    names: list[str] = []
    for stem, table in tables.items():
        write_csv(table, folder / f"{stem}.csv", french=False)
        write_csv(table, folder / f"{stem}_fr.csv", french=True)
        write_text_atomic(folder / f"{stem}.schema.json", json.dumps(
            table_schema(COMPARAISON_CONTRACTS[stem]), ensure_ascii=False, indent=2) + "\n")
        names += [f"{stem}.csv", f"{stem}_fr.csv", f"{stem}.schema.json"]
    return names


#: Sheet names of the workbook, by file stem.
_SHEETS = {"comparaison_communes": "Communes", "comparaison_departements": "Départements",
           "comparaison_epci": "EPCI", "comparaison_cours_appel": "Cours d'appel",
           "comparaison_services": "Services"}


def _cell(value: Any) -> Any:
    """Return a cell value for openpyxl: NaN and NA empty, numpy scalars as Python."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if value is pd.NA:
        return None
    return value.item() if isinstance(value, np.generic) else value


def _write_xlsx(path: Path, tables: Mapping[str, pd.DataFrame], summary: Sequence[str]
                ) -> None:
    """Write the summary sheet and one sheet per table (text cells spreadsheet-safe)."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Résumé"
    for line in summary:
        ws.append([spreadsheet_safe(line)])
    ws.column_dimensions["A"].width = 140
    for stem, table in tables.items():
        sheet = wb.create_sheet(_SHEETS.get(stem, stem[:31]))
        safe = spreadsheet_safe_frame(table)
        sheet.append([str(c) for c in safe.columns])
        for c in sheet[1]:
            c.font = Font(bold=True)
        for row in safe.itertuples(index=False):
            sheet.append([_cell(v) for v in row])
        sheet.freeze_panes = "A2"
    with atomic_path(path) as tmp:
        wb.save(tmp)


def write_comparison(cmp: RunComparison, a: RunOutputs, b: RunOutputs,
                     out_dir: str | Path) -> list[Path]:
    """Write the comparison: CSV tables (schemas, French CSV), workbook, summary and map.

    Everything is written in a staging folder beside ``out_dir`` and moved in place at the
    end: an error leaves ``out_dir`` as it was.

    Returns
    -------
    list of pathlib.Path
        The files written, in ``out_dir``.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tables = _tables(cmp)
        names = _write_tables(tables, staging)
        summary = cmp.summary()
        _write_xlsx(staging / COMPARISON_FILES["xlsx"], tables, summary)
        page = standalone_html(comparison_map(cmp, a, b, static_url=""))
        write_text_atomic(staging / COMPARISON_FILES["carte"], page)
        write_text_atomic(staging / COMPARISON_FILES["resume"], "\n".join(summary) + "\n")
        names += [COMPARISON_FILES[k] for k in ("xlsx", "carte", "resume")]
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            (staging / name).replace(out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / n for n in names]
