"""Typed defaults of zones-blanches: thresholds, speeds, CRSs, paths. No I/O here.

Every figure that shapes a result is a field of :class:`Settings`, documented with its unit
and source, and can be overridden (``dataclasses.replace``) or from the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType

from coverage.errors import CoverageError

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
    "PROXY_DETOUR_FACTOR",
    "PROXY_SPEED_KMH_BY_DENSITY",
    "REPO_ROOT",
    "SERVICES_DATA_DIR",
    "SERVICE_TYPES",
    "STATIC_DIR",
    "Settings",
    "is_fictional_code",
    "metric_crs_for",
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
#: Mean door-to-door speed of the proxy engine by INSEE density level (1 dense … 4 très peu
#: dense), km/h: slower in dense towns (traffic, lights), faster on rural roads.
PROXY_SPEED_KMH_BY_DENSITY: Mapping[int, float] = MappingProxyType(
    {1: 30.0, 2: 45.0, 3: 60.0, 4: 65.0}
)


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
    proxy_speed_kmh_by_density
        Proxy speed by INSEE density level, km/h.
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
    proxy_speed_kmh_by_density: Mapping[int, float] = field(
        default_factory=lambda: PROXY_SPEED_KMH_BY_DENSITY
    )
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
            "proxy_speed_kmh_by_density": {
                str(k): v for k, v in self.proxy_speed_kmh_by_density.items()
            },
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
    raise ValueError("true or false")


def _parse_int(text: str) -> int:
    if not text.lstrip("-").isdigit():
        raise ValueError("a whole number")
    return int(text)


def _parse_float(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError("a number") from None
    if math.isnan(number):
        raise ValueError("a number")
    return number


def _parse_tuple(text: str, current: tuple[object, ...]) -> tuple[object, ...]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError("a comma-separated list")
    if current and isinstance(current[0], float):
        return tuple(float(t) for t in items)
    return tuple(items)


def _parse_mapping(text: str, current: Mapping[object, object]) -> Mapping[object, object]:
    merged = dict(current)
    for pair in text.split(","):
        key, sep, speed = pair.partition(":")
        if not sep:
            raise ValueError("key:value pairs separated by commas")
        try:
            k: object = (int(key) if all(isinstance(x, int) for x in current)
                         else key.strip())
            merged[k] = float(speed)
        except ValueError:
            raise ValueError("key:value pairs separated by commas") from None
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
    raise ValueError("a supported value")


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
        ``proxy_speed_kmh_by_density=4:60``).

    Raises
    ------
    coverage.errors.CoverageError
        Unknown field, or a value that does not parse; the message lists what is accepted.
    """
    known = {f.name for f in fields(Settings)}
    changes: dict[str, object] = {}
    for name, text in overrides.items():
        if name not in known:
            msg = (f"unknown setting {name!r}; settings are: " + ", ".join(sorted(known)))
            raise CoverageError(msg)
        try:
            value = _parse_override(name, getattr(base, name), text)
        except ValueError as exc:
            msg = f"setting {name}={text!r}: expected {exc}"
            raise CoverageError(msg) from None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            msg = f"setting {name}={text!r}: expected a value ≥ 0"
            raise CoverageError(msg)
        changes[name] = value
    return replace(base, **changes)  # type: ignore[arg-type]
