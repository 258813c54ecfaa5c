"""Load and validate a services file (contract :data:`coverage.schemas.SERVICES`).

Formats: CSV, XLSX, GeoJSON, GeoPackage, (Geo)Parquet. Column aliases are listed in
:data:`SERVICE_ALIASES` (they cover the shared partial list of public sites, which has
``source_url`` and no ``service_id`` nor ``nom``). A service without coordinates is placed
at its commune's representative point (``precision="commune"``); coordinates given are
checked against metropolitan France and the communes data set's territory
(``precision="adresse"``), and must lie within :data:`SERVICE_MAX_KM_FROM_COMMUNE` (20 km)
of the polygon of the commune given in ``code_insee`` (a row beyond is an error naming the
distance: a wrong code or wrong coordinates). Capacities must be finite numbers ≥ 0.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage._validate import ProblemList, duplicate_rows, require_columns
from coverage.cog import Harmonised, harmonise_codes, national_communes, normalise_codes
from coverage.demo import demo_paths
from coverage.errors import OutOfTerritoryError, UnknownCodeError
from coverage.io.tables import Loaded, gpkg_layers, is_blank, read_table, rename_aliases, to_number
from coverage.labels import fr_decimal, fr_int
from coverage.settings import (
    CRS_INPUT_OUTPUT,
    METRO_BBOX,
    Settings,
    is_fictional_code,
    metric_crs_for,
)

__all__ = [
    "DROM_BBOXES",
    "MAX_CAPACITY",
    "SERVICE_ALIASES",
    "SERVICE_COLUMNS",
    "SERVICE_MAX_KM_FROM_COMMUNE",
    "TERRITORY_MARGIN_DEG",
    "load_services",
    "normalise_service_types",
    "type_key",
]


log = logging.getLogger(__name__)

#: Contract column → accepted aliases (compared case- and accent-insensitively).
SERVICE_ALIASES: Mapping[str, Sequence[str]] = {
    "service_id": ("id", "identifiant", "id_service", "code_service"),
    "type_service": ("type", "type_de_service", "categorie"),
    "nom": ("nom_service", "name", "libelle", "denomination"),
    "organisme": ("gestionnaire", "association", "structure", "operateur"),
    "adresse": ("address", "adresse_postale", "voie"),
    "code_insee": ("code_commune", "insee", "INSEE_COM", "codgeo", "depcom", "code_com"),
    "lon": ("longitude", "x", "lng"),
    "lat": ("latitude", "y"),
    "capacite": ("etp", "places", "capacity"),
    "source": ("source_url", "url", "lien", "origine"),
    "date_source": ("date", "date_maj", "date_de_la_source"),
    "precision": ("precision_localisation", "geocodage"),
}

#: Output columns of :func:`load_services`, in order.
SERVICE_COLUMNS = ["service_id", "type_service", "nom", "organisme", "adresse", "code_insee",
                   "code_dep", "lon", "lat", "capacite", "source", "date_source", "precision",
                   "geometry"]

#: Largest capacity of one service accepted (ETP or places); also refuses ``inf``.
MAX_CAPACITY = 10_000
#: Margin around the communes data set's département boxes for service coordinates, degrees.
TERRITORY_MARGIN_DEG = 0.2
#: Largest distance between a service's given coordinates and the polygon of its commune
#: (``code_insee``), km; beyond it the row is an error.
SERVICE_MAX_KM_FROM_COMMUNE = 20.0

#: Rough lon/lat boxes of the five DROM (degrees, EPSG:4326), used as the territory when
#: the services are checked against the national table (no commune polygons given).
DROM_BBOXES: Mapping[str, tuple[float, float, float, float]] = {
    "971": (-61.9, 15.8, -60.9, 16.6),
    "972": (-61.3, 14.3, -60.7, 14.95),
    "973": (-54.7, 2.0, -51.5, 5.9),
    "974": (55.1, -21.5, 55.9, -20.8),
    "976": (44.9, -13.1, 45.4, -12.5),
}

_STOPWORDS = frozenset({"de", "d", "du", "des", "la", "le", "les", "l", "service", "services",
                        "et"})


def type_key(text: str) -> str:
    """Comparison key of a service type: no case, accents, articles, plural ``s``."""
    norm = unicodedata.normalize("NFKD", str(text))
    norm = "".join(ch for ch in norm if not unicodedata.combining(ch)).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", norm) if w and w not in _STOPWORDS]
    return "_".join(w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words)


def normalise_service_types(values: pd.Series, service_types: Sequence[str]) -> pd.Series:
    """Map type labels ("Médiation familiale", "espace de rencontre"…) to settings' types.

    Unknown labels become NA (the caller reports them).
    """
    keys = {type_key(t): t for t in service_types}
    uniq = pd.Series(values.dropna().unique())
    mapping = {v: keys.get(type_key(v)) for v in uniq}
    return values.map(mapping).astype("str")


def load_services(path: str | Path | None = None, *,
                  communes: Loaded | gpd.GeoDataFrame | None = None,
                  settings: Settings = Settings(),
                  layer: str | None = None) -> Loaded:
    """Read and validate a services file.

    Parameters
    ----------
    path
        CSV, XLSX, GeoJSON, GeoPackage or (Geo)Parquet. None → the fictional demo's
        services (``coverage.demo.demo_paths().services``).
    communes
        The communes data set (:func:`coverage.io.communes.load_communes`): service codes
        must be communes of it, services without coordinates are placed at its
        representative points, and coordinates are checked against its territory. None →
        the national COG 2026 table (codes only: services without coordinates then keep
        NaN coordinates and a warning; territory = metropolitan France and the DROM).
    settings
        ``service_types`` and ``max_input_bytes`` are used.
    layer
        GeoPackage layer (default: ``services`` when present, else the only layer; a
        GeoPackage of several layers without a ``services`` one needs it).

    Returns
    -------
    Loaded
        ``data``: GeoDataFrame of points in EPSG:4326 with :data:`SERVICE_COLUMNS`
        (``capacite`` float, ETP or places; ``precision`` "adresse" or "commune").

    Raises
    ------
    InputError
        One problem per bad row/column: missing columns, unknown types, unknown codes or
        communes absent from the data set (:class:`~coverage.errors.UnknownCodeError`),
        duplicate ids (:class:`~coverage.errors.DuplicateIdError`), coordinates out of the
        territory or more than :data:`SERVICE_MAX_KM_FROM_COMMUNE` km from the commune's
        polygon (:class:`~coverage.errors.OutOfTerritoryError`), a capacity that is not a
        finite number ≥ 0…
    """
    if path is None:
        path = demo_paths().services
    p = Path(path)
    file = str(p)
    if layer is None and p.suffix.lower() == ".gpkg" and p.is_file():
        layers = gpkg_layers(p)
        layer = "services" if "services" in layers else None
    raw = read_table(p, max_bytes=settings.max_input_bytes, layer=layer)
    df, _notes = rename_aliases(raw.reset_index(drop=True), SERVICE_ALIASES, file=file)
    warnings: list[str] = []
    problems = ProblemList(file)
    com = communes.data if isinstance(communes, Loaded) else communes
    require_columns(df, ["type_service", "organisme", "code_insee", "source", "date_source"],
                    file=file, hint={"source": "une colonne « source » (alias source_url)"})

    harm, ref, ref_codes, elsewhere = _service_codes(df, com, file, problems)
    warnings += harm.warnings
    warnings += _types_and_ids(df, settings, file, problems)
    warnings += _text_and_capacity(df, file, problems)

    lon, lat = _given_coordinates(df, raw, file, problems)
    has_xy = lon.notna() & lat.notna()
    _check_territory(lon, lat, has_xy, com, file, problems)
    _check_near_commune(df["code_insee"], (lon, lat), has_xy, com, problems)
    problems.raise_if_any()

    warnings += _across_the_border(elsewhere, has_xy, file)
    keep = ~(elsewhere & ~has_xy)
    df, lon, lat, has_xy = df[keep], lon[keep], lat[keep], has_xy[keep]
    warnings += _place(df, lon, lat, has_xy, ref, file)
    df["code_dep"] = df["code_insee"].map(ref_codes).astype("str")
    for col in ("nom", "organisme", "adresse", "source", "date_source", "service_id"):
        df[col] = df[col].astype("str").str.strip()
    geometry = gpd.points_from_xy(df["lon"], df["lat"], crs=CRS_INPUT_OUTPUT)
    out = gpd.GeoDataFrame(df[SERVICE_COLUMNS[:-1]].reset_index(drop=True),
                           geometry=geometry, crs=CRS_INPUT_OUTPUT)
    log.info("%s: %d services loaded", file, len(out))
    return Loaded(out, warnings, harm.remapped, file)


def _is_fictional(df: pd.DataFrame, com: pd.DataFrame | None) -> bool:
    """Return whether the services belong to the fictional demo territory."""
    if com is not None:
        if "fictif" in com.columns:
            return bool(com["fictif"].all())
        return bool(com["code_insee"].map(is_fictional_code).all())
    codes0 = normalise_codes(df["code_insee"])
    # fictional services validated alone
    return bool(codes0.notna().any()) and bool(codes0.dropna().map(is_fictional_code).all())


def _service_codes(df: pd.DataFrame, com: pd.DataFrame | None, file: str,
                   problems: ProblemList) -> tuple[Harmonised, pd.DataFrame, pd.Series,
                                                   pd.Series]:
    """Harmonise the commune codes and check them against the communes (else the COG).

    Returns
    -------
    tuple
        The harmonised codes, the reference communes (indexed by code), the département
        of each reference code, and the mask of services in real communes outside the
        communes data set (services across the border).
    """
    fictional = _is_fictional(df, com)
    harm = harmonise_codes(df["code_insee"], file=file, fictional=fictional,
                           problems=problems)
    df["code_insee"] = harm.codes
    national = national_communes().set_index("code_insee")
    if com is None:
        return harm, national, national["code_dep"], pd.Series(False, index=df.index)
    known = pd.Index(com["code_insee"].to_numpy(dtype=object)).unique()
    is_known = known.get_indexer(df["code_insee"].fillna("").to_numpy(dtype=object)) >= 0
    absent = df["code_insee"].notna() & ~is_known
    # A real commune outside the data set: a service across the border. It is kept when
    # its coordinates are given (families may cross the border), and ignored with a
    # warning otherwise (it cannot be placed).
    elsewhere = absent & df["code_insee"].isin(national.index) & (not fictional)
    where = f"une commune du fichier des communes ({fr_int(len(known))} communes)"
    problems.add_rows(absent & ~elsewhere, "code_insee", where, df["code_insee"],
                      kind=UnknownCodeError)
    ref = com.set_index("code_insee")
    return harm, ref, ref["code_dep"].combine_first(national["code_dep"]), elsewhere


def _types_and_ids(df: pd.DataFrame, settings: Settings, file: str,
                   problems: ProblemList) -> list[str]:
    """Check ``type_service`` and ``service_id`` (generated when absent); return warnings."""
    types = normalise_service_types(df["type_service"], settings.service_types)
    problems.add_rows(types.isna(), "type_service",
                      "l'une des valeurs " + ", ".join(settings.service_types), df["type_service"])
    df["type_service"] = types.where(types.notna(), df["type_service"])
    if "service_id" not in df.columns:
        df["service_id"] = _generated_ids(df)
        return [f"{file} : pas de colonne « service_id » ; identifiants stables générés à partir "
                "du type, du code commune, de l'organisme, du nom et de l'adresse "
                "(S + 10 chiffres hexadécimaux)"]
    blank = is_blank(df["service_id"])
    problems.add_rows(blank, "service_id", "un identifiant de service", df["service_id"])
    df["service_id"] = df["service_id"].astype("str").str.strip()
    duplicate_rows(df["service_id"].where(~blank), file=file, column="service_id",
                   problems=problems)
    return []


def _text_and_capacity(df: pd.DataFrame, file: str, problems: ProblemList) -> list[str]:
    """Check the text columns and ``capacite`` (ETP or places); return warnings."""
    warnings: list[str] = []
    for col in ("organisme", "source", "date_source"):
        problems.add_rows(is_blank(df[col]), col, f"une valeur « {col} » non vide", df[col])
    if "nom" not in df.columns:
        df["nom"] = df["organisme"]
        warnings.append(f"{file} : pas de colonne « nom » ; le nom du service est son "
                        "« organisme »")
    else:
        blank = is_blank(df["nom"])
        if blank.any():
            warnings.append(f"{file} : {int(blank.sum())} cellule(s) « nom » vide(s) remplie(s) "
                            "par l'« organisme »")
        df["nom"] = df["nom"].where(~blank, df["organisme"])
    if "adresse" not in df.columns:
        df["adresse"] = pd.Series(pd.NA, index=df.index, dtype="str")
    if "capacite" in df.columns:
        cap = to_number(df["capacite"])
        bad = (cap.isna() & ~is_blank(df["capacite"])) | (cap < 0) | (cap > MAX_CAPACITY)
        problems.add_rows(bad, "capacite", "un nombre fini ≥ 0 (ETP ou places) jusqu'à "
                          f"{fr_int(MAX_CAPACITY)}, ou vide", df["capacite"])
        df["capacite"] = cap.where(~bad)
    else:
        df["capacite"] = np.nan
    return warnings


def _across_the_border(elsewhere: pd.Series, has_xy: pd.Series, file: str) -> list[str]:
    """Return the warnings about services in communes outside the communes data set."""
    warnings: list[str] = []
    unplaced = elsewhere & ~has_xy
    if unplaced.any():
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(unplaced.to_numpy())[:20])
        more = "…" if int(unplaced.sum()) > 20 else ""
        warnings.append(
            f"{file} : {int(unplaced.sum())} service(s) de communes hors du fichier des communes "
            f"et sans coordonnées ignoré(s) (lignes {rows}{more}) ; donnez leurs lon/lat "
            "pour les compter comme services de l'autre côté de la limite")
    if (elsewhere & has_xy).any():
        warnings.append(
            f"{file} : {int((elsewhere & has_xy).sum())} service(s) hors du fichier des "
            "communes gardé(s) à leurs coordonnées (services de l'autre côté de la limite)")
    return warnings


def _place(df: pd.DataFrame, lon: pd.Series, lat: pd.Series, has_xy: pd.Series,
           ref: pd.DataFrame, file: str) -> list[str]:
    """Set ``lon``/``lat``/``precision``: given, else the commune's point; return warnings."""
    warnings: list[str] = []
    precision = pd.Series("adresse", index=df.index, dtype="str")
    if "precision" in df.columns:  # keep a stated precision of given coordinates
        stated = df["precision"].astype("str").str.strip().str.lower()
        precision = precision.where(~stated.isin(["commune", "adresse"]), stated)
    precision = precision.where(has_xy, "commune")
    if (~has_xy).any():
        if "lon" in ref.columns and "lat" in ref.columns:
            lon = lon.where(has_xy, df["code_insee"].map(ref["lon"]))
            lat = lat.where(has_xy, df["code_insee"].map(ref["lat"]))
            warnings.append(f"{file} : {int((~has_xy).sum())} service(s) sans coordonnées "
                            "placé(s) au point représentatif de leur commune "
                            "(precision=commune)")
        else:
            warnings.append(f"{file} : {int((~has_xy).sum())} service(s) sans coordonnées et "
                            "sans polygones des communes : laissé(s) sans position")
    df["lon"] = lon.astype("float64")
    df["lat"] = lat.astype("float64")
    df["precision"] = precision
    return warnings


def _generated_ids(df: pd.DataFrame) -> pd.Series:
    """Stable ids: ``S`` + 10 hex digits of a hash of the row's identity, ``-2``… on ties."""
    parts = [df[c].astype("str").fillna("") if c in df.columns else pd.Series("", df.index)
             for c in ("type_service", "code_insee", "organisme", "nom", "adresse")]
    keys = parts[0]
    for part in parts[1:]:
        keys = keys + "|" + part
    ids = keys.map(lambda k: "S" + hashlib.sha1(k.encode("utf-8")).hexdigest()[:10])
    rank = ids.groupby(ids).cumcount()
    return ids.where(rank == 0, ids + "-" + (rank + 1).astype("str"))


def _given_coordinates(df: pd.DataFrame, raw: pd.DataFrame, file: str,
                       problems: ProblemList) -> tuple[pd.Series, pd.Series]:
    lon = pd.Series(np.nan, index=df.index)
    lat = pd.Series(np.nan, index=df.index)
    if isinstance(raw, gpd.GeoDataFrame):
        geoms = raw.geometry.reset_index(drop=True)
        present = ~(geoms.isna() | geoms.is_empty)
        not_point = present & (geoms.geom_type != "Point")
        problems.add_rows(not_point, "geometry", "un point (Point)", geoms.geom_type)
        pts = present & ~not_point
        lon[pts] = geoms[pts].x
        lat[pts] = geoms[pts].y
    for col, lo, hi in (("lon", -180.0, 180.0), ("lat", -90.0, 90.0)):
        if col not in df.columns:
            continue
        v = to_number(df[col])
        bad = (v.isna() & ~is_blank(df[col])) | (v < lo) | (v > hi)
        problems.add_rows(bad, col, f"des degrés entre {lo:g} et {hi:g} (EPSG:4326), ou vide",
                          df[col])
        target = lon if col == "lon" else lat
        target[:] = target.where(target.notna(), v.where(~bad))
    one_only = lon.notna() ^ lat.notna()
    problems.add_rows(one_only, "lon" if "lon" in df.columns else "lat",
                      "lon et lat ensemble, ou aucune des deux", df.get("lon"))
    return lon.where(~one_only), lat.where(~one_only)


def _check_territory(lon: pd.Series, lat: pd.Series, has_xy: pd.Series,
                     com: gpd.GeoDataFrame | None, file: str, problems: ProblemList) -> None:
    """Coordinates must fall in metropolitan France or in the communes data set's territory."""
    if not has_xy.any():
        return
    x = lon.to_numpy()
    y = lat.to_numpy()
    boxes = [METRO_BBOX]
    if isinstance(com, gpd.GeoDataFrame) and len(com):
        b = com.geometry.bounds
        dep_boxes = b.groupby(com["code_dep"].to_numpy()).agg(
            {"minx": "min", "miny": "min", "maxx": "max", "maxy": "max"})
        m = TERRITORY_MARGIN_DEG
        boxes += [(r.minx - m, r.miny - m, r.maxx + m, r.maxy + m)
                  for r in dep_boxes.itertuples()]
        where = "la France métropolitaine ou le territoire du fichier des communes"
    else:
        boxes += list(DROM_BBOXES.values())
        where = "la France métropolitaine ou un département d'outre-mer"
    arr = np.array(boxes)

    def inside(px: np.ndarray, py: np.ndarray) -> np.ndarray:
        hit = ((px[:, None] >= arr[:, 0]) & (py[:, None] >= arr[:, 1])
               & (px[:, None] <= arr[:, 2]) & (py[:, None] <= arr[:, 3]))
        return np.asarray(hit.any(axis=1), dtype=bool)

    ok = inside(np.nan_to_num(x), np.nan_to_num(y))
    out = has_xy.to_numpy() & ~ok
    if not out.any():
        return
    swapped = inside(np.nan_to_num(y), np.nan_to_num(x))
    found = [f"lon {fr_decimal(a, 5)} ; lat {fr_decimal(b, 5)}"
             + (" (lon et lat inversées ?)" if s else "")
             for a, b, s in zip(x, y, swapped, strict=True)]
    problems.add_rows(out, "lon", f"des coordonnées (EPSG:4326) dans {where}", found,
                      kind=OutOfTerritoryError)


def _check_near_commune(codes: pd.Series, xy: tuple[pd.Series, pd.Series], has_xy: pd.Series,
                        com: gpd.GeoDataFrame | None, problems: ProblemList) -> None:
    """Given coordinates must lie near the polygon of the service's commune.

    Distances are measured in the commune département's metric CRS; a service farther than
    :data:`SERVICE_MAX_KM_FROM_COMMUNE` km from its commune's polygon is a problem of its
    row (:class:`~coverage.errors.OutOfTerritoryError`). Services of communes outside the
    data set (across the border) have no polygon here and are not checked.
    """
    if not isinstance(com, gpd.GeoDataFrame) or not len(com) or not has_xy.any():
        return
    ref = com.drop_duplicates("code_insee").set_index("code_insee")
    polygons = ref.geometry
    code = codes.to_numpy(dtype=object)
    known = has_xy.to_numpy() & codes.isin(polygons.index).to_numpy()
    rows = np.flatnonzero(known)
    if not rows.size:
        return
    lon, lat = (v.to_numpy(dtype=float) for v in xy)
    dist = np.zeros(len(codes))
    crs_of = ref["code_dep"].astype("str").map(metric_crs_for)
    row_crs = crs_of.reindex(code[rows]).to_numpy()
    for crs in np.unique(row_crs):
        sel = rows[row_crs == crs]
        polys = gpd.GeoSeries(polygons.reindex(code[sel]).to_numpy(),
                              crs=CRS_INPUT_OUTPUT).to_crs(crs)
        pts = gpd.GeoSeries(shapely.points(lon[sel], lat[sel]),
                            crs=CRS_INPUT_OUTPUT).to_crs(crs)
        dist[sel] = shapely.distance(polys.to_numpy(), pts.to_numpy()) / 1000.0
    far = np.zeros(len(codes), dtype=bool)
    far[rows] = dist[rows] > SERVICE_MAX_KM_FROM_COMMUNE
    found = [f"lon {fr_decimal(x, 5)} ; lat {fr_decimal(y, 5)} : à {d:.0f} km du polygone "
             f"de la commune {c}"
             for x, y, d, c in zip(lon, lat, dist, code, strict=True)]
    problems.add_rows(far, "lon", "des coordonnées à moins de "
                      f"{SERVICE_MAX_KM_FROM_COMMUNE:g} km de la commune du service "
                      "(code_insee) : code ou coordonnées erronés ?", found,
                      kind=OutOfTerritoryError)
