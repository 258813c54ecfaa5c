"""Typed defaults of zones-blanches: thresholds, speeds, CRSs, paths. No I/O here.

Every figure that shapes a result is a field of :class:`Settings`, documented with its unit
and source, and can be overridden (``dataclasses.replace``) or from the CLI.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType

from coverage.errors import CoverageError, os_error_cause

__all__ = [
    "COMMUNES_DATA_DIR",
    "CRS_DROM",
    "CRS_INPUT_OUTPUT",
    "CRS_METRO",
    "DATA_DIR",
    "DEFAULT_SPEEDS_KMH",
    "DEMO_DIR",
    "FICTIONAL_DEP_PREFIX",
    "FR_IMPLICIT_MAXSPEED_KMH",
    "METRO_BBOX",
    "NO_SERVICE",
    "PACKAGE_DIR",
    "PROXY_ACCESS_MIN_BY_DENSITY",
    "PROXY_DETOUR_BOUNDS",
    "PROXY_DETOUR_FACTOR",
    "PROXY_SPEED_BREAK_KM",
    "PROXY_SPEED_FAR_KMH",
    "PROXY_SPEED_NEAR_KMH",
    "REPO_ROOT",
    "SERVICES_DATA_DIR",
    "SERVICE_TYPES",
    "SETTING_BOUNDS",
    "STATIC_DIR",
    "Bound",
    "Settings",
    "check_settings",
    "is_fictional_code",
    "metric_crs_for",
    "settings_from_file",
    "settings_with_overrides",
]


# --- Paths -------------------------------------------------------------------------------
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
DATA_DIR = REPO_ROOT / "data"
COMMUNES_DATA_DIR = DATA_DIR / "communes"
SERVICES_DATA_DIR = DATA_DIR / "services"
DEMO_DIR = DATA_DIR / "demo"
STATIC_DIR = REPO_ROOT / "static"

# --- Coordinate reference systems --------------------------------------------------------
CRS_INPUT_OUTPUT = "EPSG:4326"
CRS_METRO = "EPSG:2154"  # RGF93 v1 / Lambert-93, metropolitan France (and Corsica)
#: Local metric CRS of each overseas département (official RGF-derived UTM projections).
CRS_DROM: Mapping[str, str] = MappingProxyType(
    {
        "971": "EPSG:5490",  # RGAF09 / UTM zone 20N (Guadeloupe)
        "972": "EPSG:5490",  # RGAF09 / UTM zone 20N (Martinique)
        "973": "EPSG:2972",  # RGFG95 / UTM zone 22N (Guyane)
        "974": "EPSG:2975",  # RGR92 / UTM zone 40S (La Réunion)
        "976": "EPSG:4471",  # RGM04 / UTM zone 38S (Mayotte)
    }
)

#: Longitude/latitude box of metropolitan France with Corsica (degrees, EPSG:4326).
METRO_BBOX = (-5.3, 41.2, 9.7, 51.2)

# --- Service types -----------------------------------------------------------------------
SERVICE_TYPES: tuple[str, ...] = ("mediation_familiale", "espace_rencontre")
#: Label used in the combined view (no service of any type within the threshold).
NO_SERVICE = "aucun_service"

#: Prefix of the fictional demo territory's département codes ("ZA", "ZB"): never a real code.
FICTIONAL_DEP_PREFIX = "Z"

# --- Road speeds -------------------------------------------------------------------------
#: Default free-flow speed by OSM ``highway`` class, km/h, when a way has no usable
#: ``maxspeed``. French general limits (Code de la route R413-2: 130 motorway, 110 dual
#: carriageway, 80 two-lane rural road since 2018, 50 in built-up areas) reduced for
#: minor classes where actual speeds are lower than the limit.
DEFAULT_SPEEDS_KMH: Mapping[str, float] = MappingProxyType(
    {
        "motorway": 130.0,
        "motorway_link": 70.0,
        "trunk": 110.0,
        "trunk_link": 60.0,
        "primary": 80.0,
        "primary_link": 50.0,
        "secondary": 80.0,
        "secondary_link": 50.0,
        "tertiary": 70.0,
        "tertiary_link": 40.0,
        "unclassified": 50.0,
        "residential": 30.0,
        "living_street": 20.0,
        "service": 20.0,
        "road": 40.0,
    }
)

#: Values of French implicit ``maxspeed`` tags, km/h.
FR_IMPLICIT_MAXSPEED_KMH: Mapping[str, float] = MappingProxyType(
    {
        "FR:urban": 50.0,
        "FR:rural": 80.0,
        "FR:motorway": 130.0,
        "FR:zone30": 30.0,
        "FR:walk": 6.0,
        "FR:trunk": 110.0,
        "FR:living_street": 20.0,
    }
)

# --- Proxy engine ------------------------------------------------------------------------
#: Road distance / straight-line distance. 1.3 is the usual order of magnitude of the
#: detour index for French roads between communes (road/crow-fly ratios of 1.2 to 1.4 are
#: reported for rural France); override it when a local calibration exists.
PROXY_DETOUR_FACTOR = 1.3
#: Plausible (optimistic, pessimistic) bounds of the detour factor, for the low–high ranges
#: of the white-zone figures (issue 12): 1.2 to 1.45 spans the road / straight-line ratios
#: reported between French communes. Only detour ÷ speed enters the proxy minutes, so these
#: bounds also span a speed uncertainty of about −10 % … +8 %.
PROXY_DETOUR_BOUNDS: tuple[float, float] = (1.2, 1.45)
#: Access (terminal) time of one end of a proxy trip by INSEE density level (1 dense … 4 très
#: peu dense), minutes: from the commune's centre onto the inter-urban network. Counted once
#: at each end; sparse communes reach the main roads slowly. These defaults (and the two
#: speeds below) are the calibration on real OSRM car times between the communes of Isère,
#: fit half, pairs within 50 km, detour 1.3 and break 10 km fixed: see docs/calibration.md
#: (``zones-blanches calibrer``, :mod:`coverage.routing.calibration`).
PROXY_ACCESS_MIN_BY_DENSITY: Mapping[int, float] = MappingProxyType(
    {1: 0.0, 2: 0.82, 3: 3.3, 4: 12.36}
)
#: Proxy speed on the first :data:`PROXY_SPEED_BREAK_KM` road km of a trip, km/h
#: (Isère calibration, docs/calibration.md).
PROXY_SPEED_NEAR_KMH = 49.5
#: Proxy speed beyond :data:`PROXY_SPEED_BREAK_KM` road km, km/h (long trips use main roads;
#: Isère calibration, docs/calibration.md).
PROXY_SPEED_FAR_KMH = 65.1
#: Road km at which the proxy speed changes from near to far, km.
PROXY_SPEED_BREAK_KM = 10.0


@dataclass(frozen=True)
class Settings:
    """Parameters of a run. Units are in the field names or the docstring.

    Attributes
    ----------
    thresholds_min
        White-zone thresholds, minutes.
    service_types
        Service types to compute.
    matrix_cutoff_min
        Cut-off of the bounded service × commune matrix, minutes.
    snap_max_m
        Largest distance from a place to the road network, metres; beyond it the place is
        flagged ``acces_hors_reseau`` and its minutes are NaN.
    access_speed_kmh
        Speed on the connector leg between a place and its snapped node, km/h.
    include_service_roads
        Keep ``highway=service`` ways in the car network.
    ferries
        Keep ``route=ferry`` ways (timed by their ``duration`` tag).
    default_speeds_kmh
        Speed by OSM highway class when ``maxspeed`` is absent, km/h.
    proxy_detour_factor
        Road / straight-line distance ratio of the proxy engine.
    proxy_access_min_by_density
        Proxy access time of one trip end by INSEE density level, minutes.
    proxy_speed_near_kmh
        Proxy speed on the first ``proxy_speed_break_km`` road km, km/h.
    proxy_speed_far_kmh
        Proxy speed beyond ``proxy_speed_break_km`` road km, km/h.
    proxy_speed_break_km
        Road distance where the proxy speed changes, km.
    proxy_detour_bounds
        (optimistic, pessimistic) detour factors of the proxy ranges.
    land_mass_gap_m
        Largest gap between two commune polygons still counted as touching when the land
        masses (islands) are found, metres.
    secrecy_threshold
        Counts below this are masked in public exports (statistical secrecy).
    max_input_bytes
        Largest input file the loaders accept, bytes.
    """

    thresholds_min: tuple[float, ...] = (20.0, 30.0, 45.0)
    service_types: tuple[str, ...] = SERVICE_TYPES
    matrix_cutoff_min: float = 60.0
    snap_max_m: float = 5000.0
    access_speed_kmh: float = 20.0
    include_service_roads: bool = False
    ferries: bool = True
    default_speeds_kmh: Mapping[str, float] = field(default_factory=lambda: DEFAULT_SPEEDS_KMH)
    proxy_detour_factor: float = PROXY_DETOUR_FACTOR
    proxy_access_min_by_density: Mapping[int, float] = field(
        default_factory=lambda: PROXY_ACCESS_MIN_BY_DENSITY
    )
    proxy_speed_near_kmh: float = PROXY_SPEED_NEAR_KMH
    proxy_speed_far_kmh: float = PROXY_SPEED_FAR_KMH
    proxy_speed_break_km: float = PROXY_SPEED_BREAK_KM
    proxy_detour_bounds: tuple[float, ...] = PROXY_DETOUR_BOUNDS
    land_mass_gap_m: float = 300.0
    secrecy_threshold: int = 5
    max_input_bytes: int = 1_000_000_000

    @property
    def max_threshold_min(self) -> float:
        """Largest white-zone threshold, minutes."""
        return max(self.thresholds_min)

    def as_dict(self) -> dict[str, object]:
        """Plain-JSON view of the settings, for manifests."""
        return {
            "thresholds_min": list(self.thresholds_min),
            "service_types": list(self.service_types),
            "matrix_cutoff_min": self.matrix_cutoff_min,
            "snap_max_m": self.snap_max_m,
            "access_speed_kmh": self.access_speed_kmh,
            "include_service_roads": self.include_service_roads,
            "ferries": self.ferries,
            "default_speeds_kmh": dict(self.default_speeds_kmh),
            "proxy_detour_factor": self.proxy_detour_factor,
            "proxy_access_min_by_density": {
                str(k): v for k, v in self.proxy_access_min_by_density.items()
            },
            "proxy_speed_near_kmh": self.proxy_speed_near_kmh,
            "proxy_speed_far_kmh": self.proxy_speed_far_kmh,
            "proxy_speed_break_km": self.proxy_speed_break_km,
            "proxy_detour_bounds": list(self.proxy_detour_bounds),
            "land_mass_gap_m": self.land_mass_gap_m,
            "secrecy_threshold": self.secrecy_threshold,
            "max_input_bytes": self.max_input_bytes,
        }


def metric_crs_for(code_dep: str) -> str:
    """Metric CRS for a département: Lambert-93 in metropolitan France, local UTM in a DROM.

    Parameters
    ----------
    code_dep
        Département code ("01" … "95", "2A", "2B", "971" … "976", or a fictional "Z…").

    Returns
    -------
    str
        An ``EPSG:`` string.
    """
    return CRS_DROM.get(code_dep, CRS_METRO)


def is_fictional_code(code: str) -> bool:
    """Return True for codes of the fictional demo territory (département prefix ``Z``)."""
    return code.startswith(FICTIONAL_DEP_PREFIX)


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in {"1", "true", "yes", "oui", "on"}:
        return True
    if low in {"0", "false", "no", "non", "off"}:
        return False
    raise ValueError("true ou false (oui ou non)")


def _parse_int(text: str) -> int:
    if not text.lstrip("-").isdigit():
        raise ValueError("un nombre entier")
    return int(text)


def _parse_float(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError("un nombre") from None
    if math.isnan(number):
        raise ValueError("un nombre")
    return number


def _parse_tuple(text: str, current: tuple[object, ...]) -> tuple[object, ...]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError("une liste séparée par des virgules")
    if current and isinstance(current[0], float):
        try:
            return tuple(float(t) for t in items)
        except ValueError:
            raise ValueError("une liste de nombres séparés par des virgules") from None
    return tuple(items)


def _parse_mapping(text: str, current: Mapping[object, object]) -> Mapping[object, object]:
    merged = dict(current)
    for pair in text.split(","):
        key, sep, speed = pair.partition(":")
        if not sep:
            raise ValueError("des paires clé:valeur séparées par des virgules")
        try:
            k: object = (int(key) if all(isinstance(x, int) for x in current)
                         else key.strip())
            merged[k] = float(speed)
        except ValueError:
            raise ValueError("des paires clé:valeur séparées par des virgules") from None
    return MappingProxyType(merged)


def _parse_override(name: str, current: object, text: str) -> object:
    """Parse ``text`` for the field ``name`` whose current value is ``current``.

    Raises
    ------
    ValueError
        The text does not parse; the message says what was expected.
    """
    text = text.strip()
    if isinstance(current, bool):  # before int: a bool is an int
        return _parse_bool(text)
    if isinstance(current, int):
        return _parse_int(text)
    if isinstance(current, float):
        return _parse_float(text)
    if isinstance(current, tuple):
        return _parse_tuple(text, current)
    if isinstance(current, Mapping):
        return _parse_mapping(text, current)
    raise ValueError("une valeur prise en charge")


def settings_with_overrides(base: Settings, overrides: Mapping[str, str]) -> Settings:
    """Return settings with some fields replaced from text (``--set KEY=VALUE`` on the CLI).

    Parameters
    ----------
    base
        Settings to start from.
    overrides
        Field name → text: numbers (``snap_max_m=3000``), booleans (``ferries=false``),
        comma lists (``thresholds_min=15,30``), ``key:value`` pairs merged into a mapping
        (``default_speeds_kmh=unclassified:40,residential:25``,
        ``proxy_access_min_by_density=4:8``).

    Raises
    ------
    coverage.errors.CoverageError
        Unknown field, or a value that does not parse; the message lists what is accepted.
    """
    known = {f.name for f in fields(Settings)}
    changes: dict[str, object] = {}
    for name, text in overrides.items():
        if name not in known:
            msg = (f"réglage inconnu « {name} » ; réglages possibles : "
                   + ", ".join(sorted(known)))
            raise CoverageError(msg)
        try:
            value = _parse_override(name, getattr(base, name), text)
        except ValueError as exc:
            msg = f"réglage {name}={text} : attendu {exc}"
            raise CoverageError(msg) from None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            msg = f"réglage {name}={text} : attendu une valeur ≥ 0"
            raise CoverageError(msg)
        _check_bounds(name, value, text)
        changes[name] = value
    return replace(base, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Bound:
    """Accepted range of a numeric setting (every value of a list or mapping setting).

    Attributes
    ----------
    lo, hi
        Smallest and largest accepted value (``hi`` included).
    lo_open
        True when ``lo`` itself is refused (a value must be > ``lo``).
    unit
        Unit shown in the message (French).
    """

    lo: float
    hi: float
    lo_open: bool = False
    unit: str = ""

    def accepts(self, value: float) -> bool:
        """Return True when ``value`` is finite and in the range."""
        if not math.isfinite(value):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        return above and value <= self.hi

    def text(self) -> str:
        """Return the range in French (« entre 1 et 150 km/h », « > 0 et ≤ 600 min »)."""
        unit = f" {self.unit}" if self.unit else ""
        if self.lo_open:
            return f"une valeur > {self.lo:g} et ≤ {self.hi:g}{unit}"
        return f"une valeur entre {self.lo:g} et {self.hi:g}{unit}"


#: Accepted ranges of the numeric settings (fields absent from :class:`Settings` are skipped).
SETTING_BOUNDS: Mapping[str, Bound] = MappingProxyType({
    "thresholds_min": Bound(0, 600, lo_open=True, unit="min"),
    "matrix_cutoff_min": Bound(0, 1440, lo_open=True, unit="min"),
    "snap_max_m": Bound(0, 100_000, lo_open=True, unit="m"),
    "access_speed_kmh": Bound(1, 150, unit="km/h"),
    "default_speeds_kmh": Bound(1, 150, unit="km/h"),
    "proxy_detour_factor": Bound(1, 3),
    "proxy_detour_bounds": Bound(1, 3),
    "proxy_speed_kmh_by_density": Bound(1, 150, unit="km/h"),
    "proxy_speed_near_kmh": Bound(1, 150, unit="km/h"),
    "proxy_speed_far_kmh": Bound(1, 150, unit="km/h"),
    "proxy_speed_break_km": Bound(0, 1000, lo_open=True, unit="km"),
    "proxy_access_min_by_density": Bound(0, 120, unit="min"),
    "secrecy_threshold": Bound(0, 1000),
    "max_input_bytes": Bound(0, 1e12, lo_open=True, unit="octets"),
})


def _numbers(value: object) -> list[float]:
    """Return the numbers of a setting's value (itself, a list's items, a mapping's values)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [float(v) for v in value if isinstance(v, (int, float)) and not
                isinstance(v, bool)]
    return []


def _check_bounds(name: str, value: object, text: str | None = None) -> None:
    """Refuse a value of setting ``name`` out of its :data:`SETTING_BOUNDS` range."""
    bound = SETTING_BOUNDS.get(name)
    if bound is None:
        return
    bad = [v for v in _numbers(value) if not bound.accepts(v)]
    if bad:
        shown = text if text is not None else f"{bad[0]:g}"
        msg = f"réglage {name}={shown} refusé : {bound.text()} attendue"
        raise CoverageError(msg)


def check_settings(settings: Settings) -> Settings:
    """Return ``settings`` when every numeric field is in its :data:`SETTING_BOUNDS` range.

    Raises
    ------
    coverage.errors.CoverageError
        A field out of range; the French message names it and gives the accepted range.
    """
    for name in SETTING_BOUNDS:
        if hasattr(settings, name):
            _check_bounds(name, getattr(settings, name))
    return settings


def _override_text(value: object) -> str:
    """Return the ``--set`` text of a JSON value (list → ``a,b``, object → ``k:v,k:v``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return ",".join(f"{k}:{v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def settings_from_file(path: str | Path, base: Settings | None = None) -> Settings:
    """Return settings with the overrides of a JSON settings file (``run --settings FILE``).

    The file is a JSON object of :class:`Settings` field names → values (numbers, booleans,
    lists, objects for mappings), e.g. what ``zones-blanches calibrer`` writes. A top-level
    ``"settings"`` object is read when present (the other keys then document the file).
    Values are checked exactly as ``--set KEY=VALUE`` (:func:`settings_with_overrides`).

    Parameters
    ----------
    path
        The JSON file.
    base
        Settings to start from (default: the defaults).

    Raises
    ------
    coverage.errors.CoverageError
        The file is missing or not a JSON object, or a field is unknown or badly typed.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"fichier de réglages {p} : lecture impossible ({os_error_cause(exc)})"
        raise CoverageError(msg) from None
    except json.JSONDecodeError as exc:
        msg = (f"fichier de réglages {p}, ligne {exc.lineno}, colonne {exc.colno} : attendu "
               "du JSON valide")
        raise CoverageError(msg) from None
    if isinstance(data, dict) and isinstance(data.get("settings"), dict):
        data = data["settings"]
    if not isinstance(data, dict):
        msg = (f"fichier de réglages {p} : attendu un objet JSON de noms de réglages et de "
               "leurs valeurs")
        raise CoverageError(msg)
    try:
        return settings_with_overrides(base or Settings(),
                                       {str(k): _override_text(v) for k, v in data.items()})
    except CoverageError as exc:
        msg = f"fichier de réglages {p} : {exc}"
        raise CoverageError(msg) from None
