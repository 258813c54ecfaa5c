"""Matplotlib figures of the exports: the PNG map of a département and the waiting-list charts.

Every figure is a pyplot-free :class:`matplotlib.figure.Figure` (thread-safe: the app
renders from several sessions) and every PNG is written atomically.

* :func:`render_png_map`: white zones and classes of minutes of a département's communes,
  its services, a scale bar in km and a north arrow, drawn in the département's metric CRS
  (:func:`coverage.settings.metric_crs_for`: EPSG:2154 in metropolitan France, local UTM
  in the DROM), with the engine named in the source line.
* :func:`figure_series`, :func:`figure_ranking`, :func:`figure_tension`: the waiting-list
  charts, drawn from the tables of :mod:`coverage.waiting`; :func:`waiting_charts_png`
  writes them (masked by :func:`coverage.waiting.mask_public` in a public export).

Figures of fictional data say so (« TERRITOIRE FICTIF », « DONNÉES FICTIVES »).

Text is drawn as typed: every text of a figure is made plain (:func:`plain_text`: no
mathtext, no TeX) before it is returned or saved, so a ``$`` in a file name of the source
line or in a name never breaks a PNG.
"""

from __future__ import annotations

import logging
import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.path import Path as MplPath
from matplotlib.text import Text

from coverage.classes import HATCH_COLOUR, UNREACHABLE_COLOUR, minute_classes
from coverage.errors import CoverageError
from coverage.export.tables import flag_column, seuil_label
from coverage.files import atomic_path
from coverage.labels import (
    DISTANCE_COLUMN_TITLES,
    FICTIONAL_CHART_NOTE,
    FICTIONAL_TITLE,
    REASON_UNREACHABLE,
    type_label,
)
from coverage.results import RunOutputs
from coverage.schemas import LISTES_ATTENTE_DEPARTEMENTS
from coverage.settings import NO_SERVICE, Settings, metric_crs_for
from coverage.waiting import (
    mask_public,
    mixed_periods_note,
    ranking,
    series_data,
    tension_table,
)

__all__ = [
    "MapOptions",
    "figure_ranking",
    "figure_series",
    "figure_tension",
    "plain_text",
    "render_png_map",
    "waiting_charts_for_run",
    "waiting_charts_png",
]

log = logging.getLogger(__name__)

#: Marker and colour of each service type on the map (other types: black markers).
_SERVICE_MARKERS = {"mediation_familiale": ("o", "#E66101"),
                    "espace_rencontre": ("s", "#5E3C99")}
_WHITE_ZONE_EDGE = "#1b1b1b"


def plain_text(fig: Figure) -> Figure:
    """Return ``fig`` with every text drawn as typed (no mathtext, no TeX).

    Matplotlib reads text between ``$`` signs as mathtext: a file named ``a$b.csv`` in the
    source line would raise a parse error at save time, and ``$x$`` would be typeset.

    Parameters
    ----------
    fig
        A figure whose texts, titles, labels and legends are all created.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig`` itself.
    """
    for text in fig.findobj(Text):
        text.set_parse_math(False)
        text.set_usetex(False)
    return fig


# --- PNG map -----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class MapOptions:
    """What the PNG map of a département shows and how it is captioned.

    Parameters
    ----------
    dept
        Département code (title, metric CRS).
    thresholds
        Thresholds of the run, minutes (classes of the legend).
    seuil
        Threshold of the white zones drawn, minutes.
    type_service
        A service type or ``aucun_service`` (the nearest service of any type).
    engine
        ``road`` or ``proxy``, named in the title.
    fictif
        Whether the territory is the fictional demo (« TERRITOIRE FICTIF » title).
    source
        Source line (:func:`coverage.results.source_line`).
    dpi
        Resolution, dots per inch.
    """

    dept: str
    thresholds: Sequence[float]
    seuil: float
    type_service: str = NO_SERVICE
    engine: str
    fictif: bool
    source: str
    dpi: int = 150


def _geometry_paths(geoms: Iterable[Any]) -> list[MplPath]:
    """Return one matplotlib Path per (multi)polygon, holes included (even-odd rings)."""
    paths = []
    for geom in geoms:
        verts: list[np.ndarray] = []
        codes: list[np.ndarray] = []
        parts = [] if geom is None or geom.is_empty else getattr(geom, "geoms", [geom])
        for poly in parts:
            if poly.geom_type != "Polygon":
                continue
            for ring in (poly.exterior, *poly.interiors):
                xy = np.asarray(ring.coords)[:, :2]
                if len(xy) < 3:
                    continue
                c = np.full(len(xy), MplPath.LINETO, dtype=MplPath.code_type)
                c[0], c[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
                verts.append(xy)
                codes.append(c)
        if verts:
            paths.append(MplPath(np.concatenate(verts), np.concatenate(codes)))
        else:
            paths.append(MplPath(np.zeros((1, 2)), [MplPath.MOVETO]))
    return paths


def _nice_length_m(span_m: float) -> float:
    """Return a round length (1, 2 or 5 × 10ⁿ metres) near a fifth of ``span_m``."""
    target = span_m / 5
    if target <= 0 or not math.isfinite(target):
        return 1000.0
    exp = 10 ** math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * exp <= target:
            return float(m * exp)
    return float(exp)


def _minutes_of(com: gpd.GeoDataFrame, type_service: str) -> pd.Series:
    """Return the minutes drawn: those of ``type_service``, else the nearest of any type."""
    column = f"minutes_{type_service}"
    if column in com.columns:
        return com[column].astype(float)
    cols = [c for c in com.columns if c.startswith("minutes_")]
    if cols:  # combined view of a layer without its column: the nearest of any type
        return com[cols].min(axis=1, skipna=True)
    return pd.Series(np.nan, index=com.index)


def _minute_classes(minutes: pd.Series, thresholds: Sequence[float]
                    ) -> tuple[list[str], list[Any], list[Any]]:
    """Return the class labels, their colours and each commune's colour (grey: unreachable).

    The classes and colours are the app's (:func:`coverage.classes.minute_classes`).
    """
    classes = minute_classes(thresholds)
    cls = classes.indices(minutes.to_numpy(dtype=float))
    facecolor: list[Any] = [UNREACHABLE_COLOUR if c < 0 else classes.colours[c] for c in cls]
    return list(classes.labels), list(classes.colours), facecolor


def _draw_communes(ax: Axes, com: gpd.GeoDataFrame, facecolor: list[Any], *, flag: str,
                   tolerance: float) -> None:
    """Draw the communes, hatch the white zones and outline the département (metres)."""
    shapes = com.geometry.simplify(tolerance, preserve_topology=True)
    paths = _geometry_paths(shapes)
    ax.add_collection(PathCollection(paths, facecolors=facecolor, edgecolors="white",
                                     linewidths=0.3))
    is_white = com[flag].astype(bool).to_numpy()
    if is_white.any():  # white hatching over the class colour (as in the app), thin outline
        white_paths = [p for p, w in zip(paths, is_white, strict=True) if w]
        ax.add_collection(PathCollection(white_paths, facecolors="none",
                                         edgecolors=HATCH_COLOUR, linewidths=0.0,
                                         hatch="////"))
        ax.add_collection(PathCollection(white_paths, facecolors="none",
                                         edgecolors=_WHITE_ZONE_EDGE, linewidths=0.5))
    # outline of the département: close the slivers between neighbouring polygons
    outline = com.geometry.buffer(tolerance).union_all().buffer(-tolerance) \
        .simplify(tolerance)
    ax.add_collection(PathCollection(_geometry_paths([outline]), facecolors="none",
                                     edgecolors="black", linewidths=1.0))


def _draw_services(ax: Axes, services: gpd.GeoDataFrame, crs: str) -> list[Any]:
    """Draw the services as markers by type; return their legend handles."""
    handles: list[Any] = []
    if not len(services):
        return handles
    svc = services.to_crs(crs)
    types = list(dict.fromkeys(svc["type_service"].astype(str)))
    fallback = iter(["^", "D", "v", "P"])
    for t in types:
        m, c = _SERVICE_MARKERS.get(t, (next(fallback, "x"), "black"))
        sel = svc[svc["type_service"].astype(str) == t]
        ax.scatter(sel.geometry.x, sel.geometry.y, marker=m, s=46, c=c,
                   edgecolors="white", linewidths=0.8, zorder=5)
        handles.append(Line2D([], [], marker=m, linestyle="", color=c,
                              markeredgecolor="white", markersize=8,
                              label=f"service : {type_label(t)}"))
    return handles


def _draw_scale_and_north(ax: Axes, bounds: Sequence[float], pad: float) -> None:
    """Draw a scale bar (metres of the metric CRS, labelled in km) and a north arrow."""
    xmin, ymin, xmax, _ = bounds
    length = _nice_length_m(xmax - xmin)
    x0, y0 = xmin, ymin - pad * 0.6
    h = pad * 0.18
    ax.add_patch(Rectangle((x0, y0), length / 2, h, facecolor="black", edgecolor="black"))
    ax.add_patch(Rectangle((x0 + length / 2, y0), length / 2, h, facecolor="white",
                           edgecolor="black"))
    ax.text(x0 + length / 2, y0 - h * 0.8, f"{length / 1000:g} km", ha="center",
            va="top", fontsize=8)
    ax.annotate("N", xy=(0.97, 0.12), xytext=(0.97, 0.03), xycoords="axes fraction",
                ha="center", va="center", fontsize=11, fontweight="bold",
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5})


def _caption(fig: Figure, ax: Axes, handles: list[Any], options: MapOptions, crs: str
             ) -> None:
    """Write the title (FICTIONAL for the demo), the legend and the source line."""
    what = type_label(options.type_service)
    how = (f"temps estimés, moteur {options.engine} : "
           f"{DISTANCE_COLUMN_TITLES['distance_estimee_km'].lower()}"
           if options.engine == "proxy" else f"temps d'accès moteur {options.engine}")
    title = (f"Zones blanches à {seuil_label(options.seuil)} min — {what}\n"
             f"Département {options.dept} · {how}")
    if options.fictif:
        title = f"{FICTIONAL_TITLE}\n{title}"
    ax.set_title(title, fontsize=11, color="#C00000" if options.fictif else "black")
    whose = "tous types" if options.type_service == NO_SERVICE else what
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.035), ncol=2,
               fontsize=8, frameon=False,
               title=f"Minutes jusqu'au service le plus proche ({whose})",
               title_fontsize=8)
    fig.text(0.01, 0.008, textwrap.fill(f"{options.source} Projection {crs}.", 170),
             fontsize=6.5, ha="left", va="bottom")


def render_png_map(
    communes: gpd.GeoDataFrame,
    services: gpd.GeoDataFrame,
    path: Path,
    options: MapOptions,
) -> Path:
    """Draw a static map of a département's white zones and services to a PNG.

    Communes are coloured by class of minutes to the nearest service of
    ``options.type_service`` (for the combined view ``aucun_service``: to the nearest
    service of any type), white zones at ``options.seuil`` minutes are hatched in red,
    services are markers by type. The map is drawn in the département's metric CRS
    (:func:`coverage.settings.metric_crs_for`) with a scale bar in km, a north arrow, a
    title (« TERRITOIRE FICTIF (démonstration) » for the demo) and a source line naming the
    engine.

    Parameters
    ----------
    communes
        :func:`coverage.export.tables.commune_layer` output (``minutes_<type>`` and
        ``zb_<type>_<seuil>`` columns), any CRS.
    services
        :func:`coverage.export.tables.service_layer` output.
    path
        Target ``.png`` (atomic write).
    options
        Département, thresholds, type, engine, FICTIONAL flag, source line, resolution.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    CoverageError
        The layer has no white-zone flag for this type and threshold.
    """
    flag = flag_column(options.type_service, options.seuil)
    if flag not in communes.columns:
        msg = (f"pas d'indicateur de zone blanche {flag} dans la couche des communes : le "
               f"calcul n'a pas le type « {options.type_service} » ou pas le seuil "
               f"{seuil_label(options.seuil)} min")
        raise CoverageError(msg)
    crs = metric_crs_for(options.dept)
    com = communes.to_crs(crs)
    bounds = com.total_bounds
    xmin, ymin, xmax, ymax = bounds
    minutes = _minutes_of(com, options.type_service)
    labels, colours, facecolor = _minute_classes(minutes, options.thresholds)

    fig = Figure(figsize=(8.27, 10.0), dpi=options.dpi)
    ax = fig.subplots()
    # drawing detail: ~1/3000 of the map's extent (≈ 30 m for a 100 km département)
    tolerance = max(xmax - xmin, ymax - ymin) / 3000
    _draw_communes(ax, com, facecolor, flag=flag, tolerance=tolerance)
    handles: list[Any] = [Patch(facecolor=c, edgecolor="white", label=lab)
                          for c, lab in zip(colours, labels, strict=True)]
    if minutes.isna().any():
        handles.append(Patch(facecolor=UNREACHABLE_COLOUR, label=REASON_UNREACHABLE))
    handles.append(Patch(facecolor=colours[-1], edgecolor=HATCH_COLOUR, hatch="////",
                         label=f"zone blanche (> {seuil_label(options.seuil)} min ou "
                               f"{REASON_UNREACHABLE})"))
    handles += _draw_services(ax, services, crs)
    pad = 0.04 * max(xmax - xmin, ymax - ymin)
    ax.set_xlim(xmin - pad, xmax + pad)
    ax.set_ylim(ymin - pad, ymax + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()
    _draw_scale_and_north(ax, bounds, pad)
    _caption(fig, ax, handles, options, crs)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.9, bottom=0.2)
    plain_text(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=options.dpi)
    return path


# --- Waiting-list charts -----------------------------------------------------------------
def _fictional_note(fig: Figure, fictif: bool) -> None:
    """Write the FICTIONAL note at the foot of a chart of fictional data."""
    if fictif:
        fig.text(0.5, 0.005, FICTIONAL_CHART_NOTE, ha="center", va="bottom", fontsize=8,
                 color="#b00020")


#: Most periods labelled one by one on the time axis of a series (beyond: automatic dates).
MAX_PERIOD_TICKS = 12


def _period_axis(ax: Axes, data: pd.DataFrame) -> None:
    """Label the time axis: one tick per period at its real date (end of the period)."""
    if len(data) <= MAX_PERIOD_TICKS:
        ax.set_xticks(data["date_periode"].tolist(), data["periode"].astype(str).tolist(),
                      rotation=30 if len(data) > 6 else 0)
    else:
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel("Période (fin de période, espacement réel)")


def figure_series(indicators: pd.DataFrame, code_dep: str, type_service: str) -> Figure:
    """Draw families waiting (left axis) and mean delay in days (right axis) over time.

    The time axis is a real date axis (the end of each period), so that years, half-years,
    quarters, months and dates of observation keep their real spacing; a series mixing
    kinds of period says so under the chart
    (:func:`coverage.waiting.mixed_periods_note`).

    Parameters
    ----------
    indicators
        :func:`coverage.waiting.waiting_indicators` output (masked or not).
    code_dep
        Département code.
    type_service
        Service type.

    Returns
    -------
    matplotlib.figure.Figure
        The line chart.
    """
    data = series_data(indicators, code_dep, type_service)
    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot()
    when = data["date_periode"].to_numpy()
    ax.plot(when, data["familles_en_attente"].astype("float64"), marker="o",
            color="#1f77b4", label="Familles en attente en fin de période")
    ax.set_ylabel("Familles en attente", color="#1f77b4")
    _period_axis(ax, data)
    ax2 = ax.twinx()
    ax2.plot(when, data["delai_moyen_jours"].astype("float64"), marker="s", linestyle="--",
             color="#d62728", label="Délai moyen (jours)")
    ax2.set_ylabel("Délai moyen (jours)", color="#d62728")
    ax.set_ylim(bottom=0)
    ax2.set_ylim(bottom=0)
    ax.set_title(f"{type_label(type_service, plural=True)} — département {code_dep}")
    fictif = bool(indicators.loc[indicators["code_dep"] == code_dep, "fictif"].any())
    _fictional_note(fig, fictif)
    note = mixed_periods_note(indicators, code_dep, type_service)
    if note:
        fig.text(0.5, 0.035 if fictif else 0.005, textwrap.fill(note, 110), ha="center",
                 va="bottom", fontsize=7, color="#444444")
    plain_text(fig).tight_layout(rect=(0, 0.1 if note else 0.03, 1, 1))
    return fig


def figure_ranking(indicators: pd.DataFrame, *, type_service: str, annee: int,
                   measure: str = "familles_en_attente_pour_100k",
                   highlight: str | None = None) -> Figure:
    """Draw the départements ranked by ``measure`` as horizontal bars.

    Parameters
    ----------
    indicators
        :func:`coverage.waiting.waiting_indicators` output (masked or not).
    type_service
        Service type.
    annee
        Year.
    measure
        A column of :data:`coverage.schemas.LISTES_ATTENTE_DEPARTEMENTS` (its title and
        unit label the axis).
    highlight
        Département whose bar is drawn in red.

    Returns
    -------
    matplotlib.figure.Figure
        The bar chart (départements without a value are left out).
    """
    r = ranking(indicators, type_service=type_service, annee=annee, measure=measure)
    r = r[r[measure].notna()]
    fig = Figure(figsize=(7, max(2.5, 0.3 * len(r) + 1.2)), dpi=100)
    ax = fig.add_subplot()
    colors = ["#d62728" if c == highlight else "#1f77b4" for c in r["code_dep"]]
    ax.barh(r["code_dep"].astype(str), r[measure], color=colors)
    ax.invert_yaxis()
    label = LISTES_ATTENTE_DEPARTEMENTS.field(measure)
    ax.set_xlabel(f"{label.title} ({label.unit})" if label.unit else label.title)
    ax.set_title(f"{type_label(type_service, plural=True)} — {annee}")
    _fictional_note(fig, bool(r["fictif"].any()))
    plain_text(fig).tight_layout(rect=(0, 0.03, 1, 1))  # plain before text is measured
    return fig


def figure_tension(tension: pd.DataFrame) -> Figure:
    """Draw families waiting per 100,000 inhabitants against the white-zone share.

    Parameters
    ----------
    tension
        :func:`coverage.waiting.tension_table` output (one type, one threshold).

    Returns
    -------
    matplotlib.figure.Figure
        The scatter, with the medians dotted when at least two départements have both.
    """
    t = tension.dropna(subset=["familles_en_attente_pour_100k", "part_population_zone_blanche"])
    fig = Figure(figsize=(6, 4.5), dpi=100)
    ax = fig.add_subplot()
    x = 100 * t["part_population_zone_blanche"]
    ax.scatter(x, t["familles_en_attente_pour_100k"], color="#1f77b4")
    for xi, yi, code in zip(x, t["familles_en_attente_pour_100k"], t["code_dep"], strict=True):
        ax.annotate(str(code), (xi, yi), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    if len(t) >= 2:
        ax.axvline(x.median(), color="grey", linewidth=0.8, linestyle=":")
        ax.axhline(t["familles_en_attente_pour_100k"].median(), color="grey", linewidth=0.8,
                   linestyle=":")
    seuil = tension["seuil_minutes"].iloc[0] if len(tension) else float("nan")
    typ = str(tension["type_service"].iloc[0]) if len(tension) else ""
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"Population en zone blanche à {seuil:g} min (%)")
    ax.set_ylabel("Familles en attente pour 100 000 hab.")
    ax.set_title(f"Tension — {type_label(typ, plural=True)}")
    _fictional_note(fig, bool(tension["fictif"].any()) if len(tension) else False)
    plain_text(fig).tight_layout(rect=(0, 0.03, 1, 1))  # plain before text is measured
    return fig


def _save_png(fig: Figure, path: Path) -> Path:
    """Write a figure as PNG (atomic write), its text plain."""
    plain_text(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def waiting_charts_png(
    indicators: pd.DataFrame,
    out_dir: str | Path,
    *,
    code_dep: str | None = None,
    couverture: pd.DataFrame | None = None,
    seuil: float | None = None,
    types: Sequence[str] | None = None,
    public: bool = True,
    settings: Settings = Settings(),
) -> list[Path]:
    """Write the waiting-list charts as PNG files (atomic writes).

    Parameters
    ----------
    indicators
        :func:`coverage.waiting.waiting_indicators` output (unmasked; masked here when
        ``public``).
    out_dir
        Folder of the PNG files (created if needed).
    code_dep
        Département of the time series (and highlighted in the ranking); None → no series.
    couverture
        ``couverture_departements`` of the run, for the tension chart (skipped when None).
    seuil
        Threshold of the tension chart, minutes; None → the smallest of the run.
    types
        Service types to draw; None → those present in ``indicators``.
    public
        Apply :func:`coverage.waiting.mask_public` first (statistical secrecy).
    settings
        ``secrecy_threshold``.

    Returns
    -------
    list of pathlib.Path
        The files written: ``listes_attente_<dep>_<type>.png`` (series),
        ``listes_attente_classement_<type>_<year>.png``,
        ``listes_attente_tension_<type>_<seuil>min.png``. A chart with nothing to show
        (every value missing or masked) is not written.
    """
    out_dir = Path(out_dir)
    data = mask_public(indicators, settings) if public else indicators
    written: list[Path] = []
    all_types: Iterable[str] = types if types is not None else sorted(
        indicators["type_service"].unique())
    for typ in all_types:
        sel = data[data["type_service"] == typ]
        if sel.empty:
            continue
        mine = sel[sel["code_dep"] == code_dep]
        if code_dep is not None and mine[["familles_en_attente",
                                          "delai_moyen_jours"]].notna().any(axis=None):
            fig = figure_series(data, code_dep, typ)
            written.append(_save_png(fig, out_dir / f"listes_attente_{code_dep}_{typ}.png"))
        year = int(sel["annee"].max())
        if sel.loc[sel["annee"] == year, "familles_en_attente_pour_100k"].notna().any():
            fig = figure_ranking(data, type_service=typ, annee=year, highlight=code_dep)
            written.append(_save_png(
                fig, out_dir / f"listes_attente_classement_{typ}_{year}.png"))
        if couverture is not None:
            cov = couverture[couverture["type_service"] == typ]
            if cov.empty:
                continue
            s = float(seuil) if seuil is not None else float(cov["seuil_minutes"].min())
            t = tension_table(indicators, couverture, type_service=typ, seuil=s)
            if public:
                t = mask_public(t, settings)
            fig = figure_tension(t)
            written.append(_save_png(
                fig, out_dir / f"listes_attente_tension_{typ}_{s:g}min.png"))
    log.info("%d waiting-list charts written to %s", len(written), out_dir)
    return written


def waiting_charts_for_run(
    run: RunOutputs,
    dept: str,
    out_dir: str | Path,
    *,
    public: bool = True,
    settings: Settings = Settings(),
) -> list[Path]:
    """Write the PNG waiting-list charts of one département from a finished run.

    Parameters
    ----------
    run
        The run (:class:`coverage.results.RunOutputs`); its ``listes_attente_departements``
        table (all départements, for the ranking) and ``couverture_departements`` (tension).
    dept
        Département code of the series and of the highlighted bar.
    out_dir
        Folder of the PNG files.
    public
        Mask small counts first (statistical secrecy).
    settings
        ``secrecy_threshold``.

    Returns
    -------
    list of pathlib.Path
        The PNG files written (see :func:`waiting_charts_png`); empty when the run has no
        waiting lists. The tension chart uses the 30-minute threshold when the run has it,
        else its smallest threshold.
    """
    table = run.tables.get(LISTES_ATTENTE_DEPARTEMENTS.name)
    if table is None or table.empty:
        return []
    couverture = run.tables.get("couverture_departements")
    seuil: float | None = None
    if couverture is not None and len(couverture):
        seuils = sorted(pd.to_numeric(couverture["seuil_minutes"]).unique().tolist())
        seuil = 30.0 if any(np.isclose(s, 30.0) for s in seuils) else float(seuils[0])
    return waiting_charts_png(table, out_dir, code_dep=str(dept), couverture=couverture,
                              seuil=seuil, public=public, settings=settings)
