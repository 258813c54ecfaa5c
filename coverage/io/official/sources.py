"""The ONE table of official open-data sources that ``zones-blanches fetch`` downloads.

Every URL the tool may fetch is built here, from a documented pattern, and nowhere else.
``--mirror BASE_URL`` replaces the scheme and host of these URLs and keeps their path
(:func:`mirror_url`), so that an internal mirror only has to copy the official tree.

How the patterns were checked (November 2026, without network access from the build
machine): each pattern below was compared with public code that downloads the same files
(scripts of data.gouv.fr's own ``api-geo``, published download manifests, notebooks). A
source is marked ``verified=True`` when the exact pattern, with the years listed, was seen
in such code; ``verified=False`` when the URL is our inference from the publisher's usual
layout and could not be confirmed. ``docs/donnees_officielles.md`` shows the same table for
users.

Sources
-------
``contours``
    Etalab « contours administratifs » of the communes, GeoJSON gzip, by COG year and
    generalisation (5 m, 50 m, 100 m, 1000 m), Licence Ouverte. Properties: ``code``,
    ``nom``, ``departement``, ``region``, ``epci``, …
``cog_communes``
    INSEE Code officiel géographique: the commune list at 1 January of the year
    (``v_commune_YYYY.csv``).
``passage``
    INSEE « table de passage annuelle » of commune codes (zip of an XLSX, sheet ``COM``,
    columns ``CODGEO_YYYY``).
``densite7``
    INSEE « grille communale de densité » at 7 levels (XLSX with title rows above the
    header; columns ``CODGEO``, ``LIBGEO``, ``DENS``, ``LIBDENS``, …).
``densite4``
    INSEE grid at 4 levels (zip of XLSX, up to the 2022 edition). From 2023 INSEE publishes
    the 7-level grid only; ``prepare`` then derives the 4 levels from the 7 (INSEE's
    documented nesting, see :data:`coverage.io.official.readers.DENSITE7_TO_4`).
``population``
    INSEE « populations légales » (zip with ``donnees_communes.csv``).
``osm``
    OpenStreetMap extract of the département from download.openstreetmap.fr (files named by
    the pre-2016 région and the département), with the Geofabrik extract of the pre-2016
    région as fallback (ODbL).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

from coverage.cog import normalise_dept as cog_normalise_dept
from coverage.errors import FetchError

__all__ = [
    "COG_COMMUNES",
    "COG_COMMUNES_VERIFIED",
    "DEFAULT_GENERALISATION",
    "DEFAULT_YEAR",
    "DENSITE4",
    "DENSITE7",
    "DEPARTEMENTS",
    "ETALAB_CONTOURS",
    "ETALAB_YEARS",
    "GENERALISATIONS",
    "GEOFABRIK",
    "INSEE_FILES",
    "OSMFR_EXTRACTS",
    "PASSAGE",
    "PASSAGE_VERIFIED",
    "POPULATION",
    "SourceFile",
    "cog_communes_file",
    "contours_file",
    "densite4_file",
    "densite7_file",
    "mirror_url",
    "national_files",
    "normalise_dept",
    "osm_file",
    "passage_file",
    "population_file",
]

#: COG year fetched when ``--year`` is not given.
DEFAULT_YEAR = 2026
#: Generalisations of the Etalab contours, metres of tolerance.
GENERALISATIONS: tuple[str, ...] = ("5m", "50m", "100m", "1000m")
#: Generalisation fetched by default: about 8 MB gzip for all of France, precise enough for
#: representative points and maps.
DEFAULT_GENERALISATION = "100m"

ETALAB_CONTOURS = (
    "https://etalab-datasets.geo.data.gouv.fr/contours-administratifs/{year}/geojson/"
    "communes-{generalisation}.geojson.gz"
)
#: Years of the Etalab contours seen in public download code (2019 … 2025; 2026 listed in a
#: published 2026 download manifest).
ETALAB_YEARS: tuple[int, ...] = (2019, 2020, 2021, 2022, 2023, 2024, 2025, 2026)

INSEE_FILES = "https://www.insee.fr/fr/statistiques/fichier"

#: INSEE COG commune list: year → file URL. The number in the path is the id of INSEE's
#: COG page of that year; it changes every year, so each year is listed.
COG_COMMUNES: Mapping[int, str] = MappingProxyType({
    2024: f"{INSEE_FILES}/7766585/v_commune_2024.csv",
    2025: f"{INSEE_FILES}/8377162/v_commune_2025.csv",
    2026: f"{INSEE_FILES}/8740222/v_commune_2026.csv",
})
COG_COMMUNES_VERIFIED: frozenset[int] = frozenset({2025})

#: INSEE annual table de passage of commune codes: one stable page id (7671867).
PASSAGE = f"{INSEE_FILES}/7671867/table_passage_annuelle_{{year}}.zip"
PASSAGE_VERIFIED: frozenset[int] = frozenset({2021, 2023, 2024, 2025, 2026})

#: INSEE 7-level density grid: year → file URL (page 6439600 until 2024; the 2025 edition
#: is a new file name on a new page).
DENSITE7: Mapping[int, str] = MappingProxyType({
    2021: f"{INSEE_FILES}/6439600/grille_densite_7_niveaux_2021.xlsx",
    2022: f"{INSEE_FILES}/6439600/grille_densite_7_niveaux_2022.xlsx",
    2023: f"{INSEE_FILES}/6439600/grille_densite_7_niveaux_2023.xlsx",
    2024: f"{INSEE_FILES}/6439600/grille_densite_7_niveaux_2024.xlsx",
    2025: f"{INSEE_FILES}/8571524/fichier_diffusion_2025.xlsx",
})

#: INSEE 4-level density grid: year → file URL (page 2114627; published up to 2022).
DENSITE4: Mapping[int, str] = MappingProxyType({
    2020: f"{INSEE_FILES}/2114627/grille_densite_2020.zip",
    2021: f"{INSEE_FILES}/2114627/grille_densite_2021.zip",
    2022: f"{INSEE_FILES}/2114627/grille_densite_niveau_detaille_2022.xlsx",
})

#: INSEE populations légales: reference year → file URL (one page id per edition).
POPULATION: Mapping[int, str] = MappingProxyType({
    2020: f"{INSEE_FILES}/6683035/ensemble.zip",
    2021: f"{INSEE_FILES}/7739582/ensemble.zip",
})

OSMFR_EXTRACTS = "https://download.openstreetmap.fr/extracts"
GEOFABRIK = "https://download.geofabrik.de"

_METRO_OSM: dict[str, tuple[str, str]] = {
    # code: (pre-2016 région folder on download.openstreetmap.fr, département file stem)
    "01": ("rhone_alpes", "ain"), "02": ("picardie", "aisne"), "03": ("auvergne", "allier"),
    "04": ("provence_alpes_cote_d_azur", "alpes_de_haute_provence"),
    "05": ("provence_alpes_cote_d_azur", "hautes_alpes"),
    "06": ("provence_alpes_cote_d_azur", "alpes_maritimes"),
    "07": ("rhone_alpes", "ardeche"), "08": ("champagne_ardenne", "ardennes"),
    "09": ("midi_pyrenees", "ariege"), "10": ("champagne_ardenne", "aube"),
    "11": ("languedoc_roussillon", "aude"), "12": ("midi_pyrenees", "aveyron"),
    "13": ("provence_alpes_cote_d_azur", "bouches_du_rhone"),
    "14": ("basse_normandie", "calvados"), "15": ("auvergne", "cantal"),
    "16": ("poitou_charentes", "charente"), "17": ("poitou_charentes", "charente_maritime"),
    "18": ("centre", "cher"), "19": ("limousin", "correze"),
    "2A": ("corse", "corse_du_sud"), "2B": ("corse", "haute_corse"),
    "21": ("bourgogne", "cote_d_or"), "22": ("bretagne", "cotes_d_armor"),
    "23": ("limousin", "creuse"), "24": ("aquitaine", "dordogne"),
    "25": ("franche_comte", "doubs"), "26": ("rhone_alpes", "drome"),
    "27": ("haute_normandie", "eure"), "28": ("centre", "eure_et_loir"),
    "29": ("bretagne", "finistere"), "30": ("languedoc_roussillon", "gard"),
    "31": ("midi_pyrenees", "haute_garonne"), "32": ("midi_pyrenees", "gers"),
    "33": ("aquitaine", "gironde"), "34": ("languedoc_roussillon", "herault"),
    "35": ("bretagne", "ille_et_vilaine"), "36": ("centre", "indre"),
    "37": ("centre", "indre_et_loire"), "38": ("rhone_alpes", "isere"),
    "39": ("franche_comte", "jura"), "40": ("aquitaine", "landes"),
    "41": ("centre", "loir_et_cher"), "42": ("rhone_alpes", "loire"),
    "43": ("auvergne", "haute_loire"), "44": ("pays_de_la_loire", "loire_atlantique"),
    "45": ("centre", "loiret"), "46": ("midi_pyrenees", "lot"),
    "47": ("aquitaine", "lot_et_garonne"), "48": ("languedoc_roussillon", "lozere"),
    "49": ("pays_de_la_loire", "maine_et_loire"), "50": ("basse_normandie", "manche"),
    "51": ("champagne_ardenne", "marne"), "52": ("champagne_ardenne", "haute_marne"),
    "53": ("pays_de_la_loire", "mayenne"), "54": ("lorraine", "meurthe_et_moselle"),
    "55": ("lorraine", "meuse"), "56": ("bretagne", "morbihan"),
    "57": ("lorraine", "moselle"), "58": ("bourgogne", "nievre"),
    "59": ("nord_pas_de_calais", "nord"), "60": ("picardie", "oise"),
    "61": ("basse_normandie", "orne"), "62": ("nord_pas_de_calais", "pas_de_calais"),
    "63": ("auvergne", "puy_de_dome"), "64": ("aquitaine", "pyrenees_atlantiques"),
    "65": ("midi_pyrenees", "hautes_pyrenees"),
    "66": ("languedoc_roussillon", "pyrenees_orientales"), "67": ("alsace", "bas_rhin"),
    "68": ("alsace", "haut_rhin"), "69": ("rhone_alpes", "rhone"),
    "70": ("franche_comte", "haute_saone"), "71": ("bourgogne", "saone_et_loire"),
    "72": ("pays_de_la_loire", "sarthe"), "73": ("rhone_alpes", "savoie"),
    "74": ("rhone_alpes", "haute_savoie"), "75": ("ile_de_france", "paris"),
    "76": ("haute_normandie", "seine_maritime"), "77": ("ile_de_france", "seine_et_marne"),
    "78": ("ile_de_france", "yvelines"), "79": ("poitou_charentes", "deux_sevres"),
    "80": ("picardie", "somme"), "81": ("midi_pyrenees", "tarn"),
    "82": ("midi_pyrenees", "tarn_et_garonne"), "83": ("provence_alpes_cote_d_azur", "var"),
    "84": ("provence_alpes_cote_d_azur", "vaucluse"), "85": ("pays_de_la_loire", "vendee"),
    "86": ("poitou_charentes", "vienne"), "87": ("limousin", "haute_vienne"),
    "88": ("lorraine", "vosges"), "89": ("bourgogne", "yonne"),
    "90": ("franche_comte", "territoire_de_belfort"), "91": ("ile_de_france", "essonne"),
    "92": ("ile_de_france", "hauts_de_seine"), "93": ("ile_de_france", "seine_saint_denis"),
    "94": ("ile_de_france", "val_de_marne"), "95": ("ile_de_france", "val_d_oise"),
}
#: Overseas départements: (download.openstreetmap.fr path without suffix, Geofabrik name).
_DROM_OSM: dict[str, tuple[str, str]] = {
    "971": ("central-america/guadeloupe", "guadeloupe"),
    "972": ("central-america/martinique", "martinique"),
    "973": ("south-america/guyane", "guyane"),
    "974": ("africa/reunion", "reunion"),
    "976": ("africa/mayotte", "mayotte"),
}

#: Every département code the OSM table knows.
DEPARTEMENTS: tuple[str, ...] = (*_METRO_OSM, *_DROM_OSM)


@dataclass(frozen=True)
class SourceFile:
    """One file to download.

    Attributes
    ----------
    key
        Source key (``contours``, ``cog_communes``, ``passage``, ``densite7``, ``densite4``,
        ``population``, ``osm``).
    url
        Official URL.
    year
        Year of the edition actually requested (may be earlier than the asked year when the
        publisher has no edition for it yet, see ``note``).
    verified
        Whether the exact URL pattern was seen in public download code (module docstring).
    title
        What the file is, in French, for the index and the docs.
    fallbacks
        Other official URLs tried, in order, when ``url`` answers 404 (the Geofabrik région
        for OSM).
    dept
        Département of a per-département file (OSM), else ``None``.
    note
        Why a different year or source was chosen, when it was.
    md5_sidecar
        The publisher puts an MD5 checksum beside the file (``<url>.md5``): Geofabrik
        does for every extract, and download.openstreetmap.fr lists ``-latest.osm.pbf.md5``
        files too. It is checked when present; its absence is only noted.
    """

    key: str
    url: str
    year: int | None
    verified: bool
    title: str
    fallbacks: tuple[str, ...] = ()
    dept: str | None = None
    note: str = ""
    md5_sidecar: bool = False


def normalise_dept(code: str) -> str:
    """Return a real département code as the COG writes it: ``"1"`` → ``"01"``, ``"2a"`` → ``"2A"``.

    The code rule is :func:`coverage.cog.normalise_dept`; this one also refuses the codes
    that have no official data (unknown codes and the fictional demo codes).

    Raises
    ------
    FetchError
        When the code is not a département of metropolitan France or a DROM.
    """
    text = cog_normalise_dept(code)
    if text not in _METRO_OSM and text not in _DROM_OSM:
        msg = (f"code de département inconnu « {code} » : attendu 01…95, 2A, 2B ou 971…976 "
               "(les codes fictifs de démonstration ZA/ZB n'ont pas de données officielles)")
        raise FetchError(msg)
    return text


def _edition(table: Mapping[int, str], year: int) -> tuple[int, str]:
    """Return the edition of ``year``, else the latest earlier one, else the earliest."""
    if year in table:
        return year, ""
    earlier = [y for y in table if y < year]
    chosen = max(earlier) if earlier else min(table)
    return chosen, f"pas d'édition connue pour {year} ; édition {chosen} utilisée"


def contours_file(year: int = DEFAULT_YEAR,
                  generalisation: str = DEFAULT_GENERALISATION) -> SourceFile:
    """Etalab commune contours of a COG year and a generalisation (GeoJSON gzip, EPSG:4326)."""
    if generalisation not in GENERALISATIONS:
        msg = (f"généralisation attendue parmi {', '.join(GENERALISATIONS)}, trouvé "
               f"« {generalisation} »")
        raise FetchError(msg)
    return SourceFile(
        "contours", ETALAB_CONTOURS.format(year=year, generalisation=generalisation), year,
        year in ETALAB_YEARS and generalisation in GENERALISATIONS,
        f"Etalab – contours administratifs des communes {year}, généralisation "
        f"{generalisation}",
    )


def cog_communes_file(year: int = DEFAULT_YEAR) -> SourceFile:
    """INSEE COG commune list at 1 January of ``year`` (CSV)."""
    used, note = _edition(COG_COMMUNES, year)
    return SourceFile("cog_communes", COG_COMMUNES[used], used, used in COG_COMMUNES_VERIFIED,
                      f"INSEE – Code officiel géographique, communes au 1er janvier {used}",
                      note=note)


def passage_file(year: int = DEFAULT_YEAR) -> SourceFile:
    """INSEE annual table de passage of commune codes (zip of XLSX)."""
    return SourceFile("passage", PASSAGE.format(year=year), year, year in PASSAGE_VERIFIED,
                      f"INSEE – table de passage annuelle des codes communes {year}")


def densite7_file(year: int = DEFAULT_YEAR) -> SourceFile:
    """INSEE 7-level density grid (XLSX)."""
    used, note = _edition(DENSITE7, year)
    return SourceFile("densite7", DENSITE7[used], used, True,
                      f"INSEE – grille communale de densité à 7 niveaux {used}", note=note)


def densite4_file(year: int = DEFAULT_YEAR) -> SourceFile:
    """INSEE 4-level density grid (zip of XLSX, or XLSX), last edition ≤ ``year``."""
    used, note = _edition(DENSITE4, year)
    return SourceFile("densite4", DENSITE4[used], used, True,
                      f"INSEE – grille communale de densité à 4 niveaux {used}", note=note)


def population_file(year: int = DEFAULT_YEAR) -> SourceFile:
    """INSEE populations légales (zip of CSV), latest known edition ≤ ``year``."""
    used, note = _edition(POPULATION, year)
    return SourceFile("population", POPULATION[used], used, True,
                      f"INSEE – populations légales {used}", note=note)


def osm_file(dept: str) -> SourceFile:
    """OSM extract of a département: download.openstreetmap.fr, Geofabrik région fallback."""
    code = normalise_dept(dept)
    if code in _DROM_OSM:
        path, geofabrik = _DROM_OSM[code]
        url = f"{OSMFR_EXTRACTS}/{path}-latest.osm.pbf"
    else:
        region, stem = _METRO_OSM[code]
        url = f"{OSMFR_EXTRACTS}/europe/france/{region}/{stem}-latest.osm.pbf"
        geofabrik = region.replace("_", "-")
    fallback = f"{GEOFABRIK}/europe/france/{geofabrik}-latest.osm.pbf"
    return SourceFile("osm", url, None, True,
                      f"OpenStreetMap – extrait du département {code} (© contributeurs OSM, "
                      "ODbL)", fallbacks=(fallback,), dept=code, md5_sidecar=True)


def national_files(year: int = DEFAULT_YEAR, *,
                   generalisation: str = DEFAULT_GENERALISATION) -> list[SourceFile]:
    """Return the national files every département needs (contours, COG, grids, populations).

    The 4-level grid is listed only for years up to its last edition (2022): later, the
    7-level grid is the source of both.
    """
    files = [contours_file(year, generalisation), cog_communes_file(year), passage_file(year),
             densite7_file(year)]
    if year <= max(DENSITE4):
        files.append(densite4_file(year))
    files.append(population_file(year))
    return files


def mirror_url(url: str, base_url: str | None) -> str:
    """``url`` with its scheme and host replaced by ``base_url``; the path is kept.

    >>> mirror_url("https://www.insee.fr/fr/a.csv", "http://miroir.local/opendata/")
    'http://miroir.local/opendata/fr/a.csv'
    """
    if not base_url:
        return url
    parts = urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    return base_url.rstrip("/") + tail
