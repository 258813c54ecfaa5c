"""Tables and layers of one département, cut from a finished run, and the cells kept secret.

:func:`departement_tables` keeps the rows of one département (its communes of each EPCI, the
whole EPCI beside them, :func:`epci_departement_table`; the density table recomputed over
its communes); :func:`commune_layer` and
:func:`service_layer` are the geographic layers of the GeoPackage, the GeoParquet and the
PNG map, in EPSG:4326. :func:`secret_cells` says which cells a public export masks
(statistical secrecy, :mod:`coverage.secrecy`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage._validate import require_crs
from coverage.accessibility import DecayBands, accessibility_for_run
from coverage.errors import CoverageError, InputError
from coverage.io.waiting import WAITING_RETURNS
from coverage.labels import engine_label
from coverage.results import (
    COMMUNES_FILE,
    SERVICES_FILE,
    RunOutputs,
    check_departement,
    run_thresholds,
)
from coverage.routing import engine_of_run
from coverage.routing.base import Engine
from coverage.schemas import (
    ACCESSIBILITE_COMMUNES,
    ACCESSIBILITE_DEPARTEMENT,
    ACCESSIBILITE_EPCI,
    COUVERTURE_EPCI_DEPARTEMENT,
    LISTES_ATTENTE_DEPARTEMENTS,
    OUTPUT_CONTRACTS,
    Contract,
    Field,
    FieldType,
)
from coverage.secrecy import mask_small_counts, secret_columns
from coverage.settings import CRS_INPUT_OUTPUT, NO_SERVICE, SERVICE_TYPES, Settings
from coverage.waiting import mask_public
from coverage.whitezones import (
    ENGINE_SPECIFIC_COLUMNS,
    NO_EPCI_CODE,
    coverage_table,
    without_empty_engine_columns,
)

__all__ = [
    "ACCESSIBILITY_METHOD",
    "ACCESSIBILITY_TABLES",
    "ALSO_SECRET",
    "EPCI_TABLE",
    "WAITING_TABLE",
    "AccessibilityExport",
    "accessibility_tables",
    "commune_layer",
    "contract_for",
    "departement_tables",
    "epci_departement_table",
    "flag_column",
    "principal_threshold",
    "run_types",
    "secret_cells",
    "service_layer",
    "seuil_label",
    "table_contract",
]

log = logging.getLogger(__name__)

#: Name of the waiting-list output table (written by the waiting-list stage when present).
WAITING_TABLE = LISTES_ATTENTE_DEPARTEMENTS.name
#: Name of the EPCI table of a département's export: its communes of each EPCI.
EPCI_TABLE = COUVERTURE_EPCI_DEPARTEMENT.name
#: Tables of the accessibility index in a département's export, in the order written:
#: per commune × type, per EPCI (its communes in the département) and for the département.
ACCESSIBILITY_TABLES: tuple[str, ...] = (ACCESSIBILITE_COMMUNES.name, ACCESSIBILITE_EPCI.name,
                                         ACCESSIBILITE_DEPARTEMENT.name)
#: Method of the index in an export: E2SFCA with the default decay bands.
ACCESSIBILITY_METHOD = "e2sfca"
#: Contracts of the tables an export makes itself (not in a run folder).
_EXPORT_CONTRACTS = {EPCI_TABLE: COUVERTURE_EPCI_DEPARTEMENT,
                     **{c.name: c for c in (ACCESSIBILITE_COMMUNES, ACCESSIBILITE_EPCI,
                                            ACCESSIBILITE_DEPARTEMENT)}}
#: Whole-EPCI columns of :data:`EPCI_TABLE` ← their column in the run's ``couverture_epci``.
_WHOLE_EPCI = {"population_epci": "population",
               "population_zone_blanche_epci": "population_zone_blanche",
               "taux_couverture_epci": "taux_couverture"}

#: Columns of ``listes_attente_departements`` that may reveal a masked count besides the
#: counts and their ``<count>_…`` columns (changes on the previous year, services with a
#: list): :func:`coverage.waiting.mask_public` decides their cells.
ALSO_SECRET: tuple[str, ...] = ("variation_delai_jours", "services_avec_liste",
                                "part_services_avec_liste")


# --- Département tables ------------------------------------------------------------------
def run_types(run: RunOutputs, settings: Settings = Settings()) -> list[str]:
    """Return the service types of a run (without the combined view), in the settings' order.

    Parameters
    ----------
    run
        A finished run (its ``acces_communes`` table).
    settings
        ``service_types``: their order comes first, then the other known types, then the
        unknown ones sorted.

    Returns
    -------
    list of str
        The types found in ``acces_communes``.
    """
    acces = run.tables.get("acces_communes")
    found = set() if acces is None else set(acces["type_service"].dropna().astype(str))
    found.discard(NO_SERVICE)
    order = list(settings.service_types) + [t for t in SERVICE_TYPES
                                            if t not in settings.service_types]
    return [t for t in order if t in found] + sorted(found - set(order))


def epci_departement_table(access: pd.DataFrame, communes: pd.DataFrame,
                           thresholds: Sequence[float], dept: str,
                           whole: pd.DataFrame | None) -> pd.DataFrame:
    """Return the EPCI lines of a département: its communes of each EPCI, the EPCI beside.

    One meaning everywhere (export CSV, XLSX, report, app): a line describes **the
    département's communes** of the EPCI; the ``*_epci`` columns give the whole EPCI (all
    its communes of the run, other départements included), and ``couverture_partielle``
    says that the EPCI reaches other départements (``departements_manquants``, COG 2026).

    Parameters
    ----------
    access
        ``acces_communes`` rows of the département's communes.
    communes
        The département's communes (``code_insee``, ``code_epci``, ``nom_epci``).
    thresholds
        Thresholds, minutes.
    dept
        Département code.
    whole
        The run's ``couverture_epci`` (whole EPCIs), or None: the ``*_epci`` columns are
        then empty. Communes outside any EPCI (``ZZZZZZZZZ``) get empty ``*_epci`` cells.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`coverage.schemas.COUVERTURE_EPCI_DEPARTEMENT`.
    """
    own = coverage_table(access, communes, thresholds, "epci")
    own.insert(0, "code_dep", dept)
    keys = ["code_epci", "type_service", "seuil_minutes"]
    if whole is not None and len(whole):
        beside = whole[[*keys, *_WHOLE_EPCI.values()]].rename(
            columns={v: k for k, v in _WHOLE_EPCI.items()})
        beside = beside[beside["code_epci"].astype(str) != NO_EPCI_CODE]
        beside = beside.assign(code_epci=beside["code_epci"].astype(str),
                               seuil_minutes=beside["seuil_minutes"].astype(float))
        own = own.assign(code_epci=own["code_epci"].astype(str),
                         seuil_minutes=own["seuil_minutes"].astype(float))
        own = own.merge(beside, on=keys, how="left")
    for col in _WHOLE_EPCI:
        if col not in own.columns:
            own[col] = np.nan
    for col in ("population_epci", "population_zone_blanche_epci"):
        own[col] = own[col].astype("Int64")
    return own[COUVERTURE_EPCI_DEPARTEMENT.columns].reset_index(drop=True)


def departement_tables(
    run: RunOutputs, dept: str, *, settings: Settings = Settings()
) -> dict[str, pd.DataFrame]:
    """Return the tables of one département, by contract name, unmasked.

    Parameters
    ----------
    run
        A finished run.
    dept
        Département code; must be in the run.
    settings
        Used for the thresholds and types when the run does not record them.

    Returns
    -------
    dict
        ``couverture_departements``, ``acces_communes``, ``zones_blanches``,
        ``couverture_epci_departement`` (the département's communes of each EPCI, the
        whole EPCI beside, :func:`epci_departement_table`),
        ``couverture_densite`` (recomputed over the département's communes) and, when
        the run has it, ``listes_attente_departements``.

    Raises
    ------
    CoverageError
        The département is not in the run, or the run lacks one of its first three tables.
    """
    dept = check_departement(run, dept)
    out: dict[str, pd.DataFrame] = {}
    for name in ("couverture_departements", "acces_communes", "zones_blanches"):
        table = run.tables.get(name)
        if table is None:
            msg = f"le calcul n'a pas de table « {name} » : relancez `zones-blanches run`"
            raise CoverageError(msg)
        out[name] = without_empty_engine_columns(
            table[table["code_dep"].astype(str) == dept].reset_index(drop=True))

    communes = run.communes[run.communes["code_dep"].astype(str) == dept]
    acces = out["acces_communes"]
    thresholds = run_thresholds(run, settings)
    if "code_epci" in communes.columns:
        out[EPCI_TABLE] = without_empty_engine_columns(epci_departement_table(
            acces, communes, thresholds, dept, run.tables.get("couverture_epci")))
    out["couverture_densite"] = without_empty_engine_columns(
        coverage_table(acces, communes, thresholds, "densite"))
    waiting = run.tables.get(WAITING_TABLE)
    if waiting is not None and "code_dep" in waiting.columns:
        out[WAITING_TABLE] = waiting[waiting["code_dep"].astype(str) == dept] \
            .reset_index(drop=True)
    return out


def principal_threshold(run: RunOutputs, settings: Settings = Settings()) -> float:
    """Return the run's principal threshold, minutes: 30 when the run has it, else the middle one.

    The default threshold of the export's map and of its accessibility index.

    Parameters
    ----------
    run
        A finished run.
    settings
        Fallback thresholds when the run does not record them.

    Returns
    -------
    float
        Minutes.
    """
    thresholds = run_thresholds(run, settings)
    if any(np.isclose(thresholds, 30.0)):
        return 30.0
    return float(thresholds[len(thresholds) // 2])


@dataclass(frozen=True)
class AccessibilityExport:
    """The accessibility index of a département's export (:func:`accessibility_tables`).

    Attributes
    ----------
    tables
        :data:`ACCESSIBILITY_TABLES` by name (empty when the run's engine cannot be
        rebuilt); one row per commune × type, EPCI × type, and type.
    threshold_min
        Catchment, minutes (the run's principal threshold).
    method
        :data:`ACCESSIBILITY_METHOD`.
    engine
        Engine that timed the pairs (``road``, ``proxy``, ``matrice``), or None.
    notes
        French notes for the method sheet and ``LISEZMOI.txt``: capacities missing, no
        service of a type, or why the index is absent.
    """

    tables: dict[str, pd.DataFrame]
    threshold_min: float
    method: str
    engine: str | None
    notes: tuple[str, ...]

    def describe(self) -> str:
        """Return the French text of the method row (method, catchment, bands, unit)."""
        bands = DecayBands.thirds(self.threshold_min).describe()
        return (f"E2SFCA (aire de chalandise flottante à deux étapes, poids décroissants par "
                f"bande de temps : {bands}), aire de chalandise de "
                f"{seuil_label(self.threshold_min).replace('_', ',')} min ; moteur "
                f"du calcul ({engine_label(self.engine) if self.engine else '?'}). Offre : "
                "colonne capacite "
                "des services (1 quand elle manque) ; demande : population des communes. "
                "Unité : ETP ou places pour 100 000 habitants ; 0 = aucun service à portée. "
                "EPCI (communes du département) et département : moyenne pondérée par la "
                "population. Tables accessibilite_communes, accessibilite_epci, "
                "accessibilite_departement (docs/accessibilite.md).")


def accessibility_tables(run: RunOutputs, dept: str, *, settings: Settings = Settings(),
                         engine: Engine | None = None, threshold_min: float | None = None
                         ) -> AccessibilityExport:
    """Return the accessibility index of a département for its export, every type at once.

    E2SFCA (:data:`ACCESSIBILITY_METHOD`, default decay bands) at the run's principal
    threshold (:func:`principal_threshold`) unless told, each type of the run
    (:func:`run_types`), timed by the run's engine: the values are those of
    :func:`coverage.accessibility.accessibility_for_run`.

    Parameters
    ----------
    run
        A finished run.
    dept
        Département code (checked).
    settings
        Fallback thresholds and types.
    engine
        Engine instead of the run's (:func:`coverage.routing.engine_of_run`).
    threshold_min
        Catchment, minutes, instead of the principal threshold (e.g. the report's).

    Returns
    -------
    AccessibilityExport
        The three tables (capacity per 100 000 inhabitants), or none with a French note
        when the run's engine cannot be rebuilt (road file or time table gone or changed),
        the communes have no representative point, or the index cannot be computed (a
        capacity or population that is not a number ≥ 0: the French line of the error).
    """
    dept = check_departement(run, dept)
    threshold = principal_threshold(run, settings) if threshold_min is None \
        else float(threshold_min)

    def left_out(why: str) -> AccessibilityExport:
        return AccessibilityExport({}, threshold, ACCESSIBILITY_METHOD, None,
                                   (f"Indice d'accessibilité non calculé : {why}",))

    if not {"lon", "lat"} <= set(run.communes.columns):
        return left_out("les communes du calcul n'ont pas de point représentatif (lon, lat) "
                        "; refaire le calcul pour l'obtenir.")
    if engine is None:
        try:
            engine = engine_of_run(run, dept=dept).engine
        except CoverageError as exc:
            log.warning("indice d'accessibilité absent de l'export de %s : %s", dept, exc)
            return left_out("le moteur du calcul ne peut pas être reconstruit (fichier "
                            "routier ou tableau de temps absent ou modifié) ; refaire le "
                            "calcul pour l'obtenir.")
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in ACCESSIBILITY_TABLES}
    notes: list[str] = []
    for t in run_types(run, settings):
        try:
            res = accessibility_for_run(run, dept, type_service=t, threshold_min=threshold,
                                        method=ACCESSIBILITY_METHOD, engine=engine)
        except CoverageError as exc:  # e.g. a capacity that is not a number ≥ 0
            log.warning("indice d'accessibilité absent de l'export de %s : %s", dept, exc)
            lines = ([pb.french() for pb in exc.problems[:3]]
                     if isinstance(exc, InputError) else [str(exc)])
            return left_out(" ; ".join(lines).rstrip(".") + ".")
        parts[ACCESSIBILITE_COMMUNES.name].append(res.communes)
        parts[ACCESSIBILITE_EPCI.name].append(res.epci)
        parts[ACCESSIBILITE_DEPARTEMENT.name].append(res.departements)
        notes += [w for w in res.warnings if w not in notes]
    tables = {name: (pd.concat(frames, ignore_index=True) if frames else
                     pd.DataFrame(columns=_EXPORT_CONTRACTS[name].columns))
              for name, frames in parts.items()}
    return AccessibilityExport(tables, threshold, ACCESSIBILITY_METHOD, engine.name,
                               tuple(notes))


def _inferred_type(s: pd.Series) -> FieldType:
    """Return the Table Schema type of a column from its dtype."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(s.dtype):
        return "integer"
    if pd.api.types.is_numeric_dtype(s.dtype):
        return "number"
    return "string"


def contract_for(name: str, df: pd.DataFrame) -> Contract:
    """Return the output contract of a table, or one inferred when the name has none.

    Parameters
    ----------
    name
        Table (contract) name, e.g. ``acces_communes``.
    df
        The table; its columns make the inferred contract.

    Returns
    -------
    coverage.schemas.Contract
        The declared contract; else columns of the waiting-list returns keep their field
        (type, unit, title, not required) and the others get a type from their dtype.
    """
    contract = OUTPUT_CONTRACTS.get(name) or _EXPORT_CONTRACTS.get(name)
    if contract is not None:
        return contract
    known = {f.name: dataclasses.replace(f, required=False) for f in WAITING_RETURNS.fields}
    fields = [known.get(str(col)) or Field(str(col), _inferred_type(df[col]), False, "", str(col))
              for col in df.columns]
    return Contract(name, name.replace("_", " ").capitalize(), tuple(fields))


def table_contract(name: str, df: pd.DataFrame, dept: str) -> Contract:
    """Return the contract of an exported table, its title naming the département's cut.

    Parameters
    ----------
    name
        Table name.
    df
        The table.
    dept
        Département code, named in the titles of ``couverture_densite`` and
        ``couverture_epci_departement``.

    Returns
    -------
    coverage.schemas.Contract
        :func:`contract_for`, retitled for those two tables.
    """
    contract = contract_for(name, df)
    # an engine-specific column left out of the table (e.g. the road distance of a proxy
    # run, :func:`coverage.whitezones.without_empty_engine_columns`) leaves its contract too
    contract = dataclasses.replace(contract, fields=tuple(
        f for f in contract.fields if f.name in df.columns or f.name not in
        ENGINE_SPECIFIC_COLUMNS))
    if name == "couverture_densite":
        contract = dataclasses.replace(
            contract, title=f"{contract.title} — communes du département {dept}")
    elif name == EPCI_TABLE:
        contract = dataclasses.replace(
            contract, title=f"Couverture par EPCI — communes du département {dept} de "
                            "chaque EPCI (EPCI entier à côté)")
    return contract


def secret_cells(
    name: str, df: pd.DataFrame, *, settings: Settings = Settings()
) -> dict[str, pd.Series]:
    """Return the cells to mask in a public export of a table, per column subject to secrecy.

    For ``listes_attente_departements`` the cells are those
    :func:`coverage.waiting.mask_public` empties (counts below the threshold, what derives
    from them, and the changes that would reveal a masked previous year); for another
    table with count columns (:func:`coverage.secrecy.secret_columns`), the counts below
    ``settings.secrecy_threshold`` and their derived columns.

    Parameters
    ----------
    name
        Table name.
    df
        The table, unmasked.
    settings
        ``secrecy_threshold`` (families).

    Returns
    -------
    dict
        Column → boolean Series (True = masked), for every column subject to secrecy
        present in ``df`` (empty when the table has none).
    """
    counts, derived = secret_columns(df, contract_for(name, df))
    subject = [*counts, *(d for ds in derived.values() for d in ds)]
    subject += [c for c in ALSO_SECRET if c in df.columns]
    subject = list(dict.fromkeys(subject))
    if not subject:
        return {}
    none = pd.Series(False, index=df.index)
    if name == WAITING_TABLE:
        masked = mask_public(df, settings)
        cells = {c: (masked[c].isna() & df[c].notna()) for c in df.columns}
    else:
        flagged = mask_small_counts(df, counts, settings.secrecy_threshold, None,
                                    derived=derived)
        cells = {c: flagged[f"{c}_masque"] for c in subject if f"{c}_masque" in flagged}
    subject += [c for c, rows in cells.items() if bool(rows.any()) and c not in subject]
    return {c: cells.get(c, none).astype(bool) for c in subject}


# --- Commune and service layers ----------------------------------------------------------
def seuil_label(minutes: float) -> str:
    """Return a threshold as in column and file names: ``30`` → ``"30"``, 22.5 → ``"22_5"``.

    Parameters
    ----------
    minutes
        Threshold, minutes.

    Returns
    -------
    str
        The label.
    """
    if float(minutes).is_integer():
        return str(int(minutes))
    return f"{minutes:g}".replace(".", "_")


def flag_column(type_service: str, minutes: float) -> str:
    """Return the name of the white-zone flag column: ``zb_<type>_<seuil>``.

    Parameters
    ----------
    type_service
        Service type, or ``aucun_service`` for the combined view.
    minutes
        Threshold, minutes.

    Returns
    -------
    str
        E.g. ``zb_aucun_service_30``.
    """
    return f"zb_{type_service}_{seuil_label(minutes)}"


def commune_layer(
    run: RunOutputs, dept: str, tables: Mapping[str, pd.DataFrame], *,
    settings: Settings = Settings(),
) -> gpd.GeoDataFrame:
    """Build the communes of a département with minutes per type and white-zone flags.

    Parameters
    ----------
    run
        A finished run (its communes must declare their CRS).
    dept
        Département code.
    tables
        :func:`departement_tables` output (``acces_communes``, ``zones_blanches``).
    settings
        Fallback thresholds and types when the run does not record them.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326. Columns: ``code_insee, nom, code_dep, population, densite, rural`` (+
        ``code_epci, nom_epci`` when known), ``minutes_<type>`` (minutes, NaN
        unreachable), ``service_<type>`` (nearest service id), ``minutes_aucun_service``
        (minutes to the nearest service of any type, NaN when none is reachable),
        ``moteur``, one boolean ``zb_<type>_<seuil>`` per type (combined view
        ``aucun_service`` included) × threshold, taken from the run's ``zones_blanches``
        table, ``fictif``, ``geometry``.
    """
    communes = run.communes[run.communes["code_dep"].astype(str) == dept]
    keep = [c for c in ("code_insee", "nom", "code_dep", "population", "densite", "rural",
                        "code_epci", "nom_epci") if c in communes.columns]
    layer = communes[[*keep, "geometry"]].copy()
    layer["code_insee"] = layer["code_insee"].astype(str)
    acces = tables["acces_communes"].assign(
        code_insee=lambda d: d["code_insee"].astype(str))
    types = run_types(run, settings)
    for t in types:
        sub = acces[acces["type_service"] == t].set_index("code_insee")
        layer[f"minutes_{t}"] = layer["code_insee"].map(sub["minutes"]).astype(float)
        layer[f"service_{t}"] = layer["code_insee"].map(sub["service_id"])
    if types:  # combined view: the nearest service of any type
        layer[f"minutes_{NO_SERVICE}"] = layer[[f"minutes_{t}" for t in types]].min(
            axis=1, skipna=True)
    moteurs = acces.groupby("code_insee")["moteur"].first()
    layer["moteur"] = layer["code_insee"].map(moteurs).fillna(run.engine)
    zb = tables["zones_blanches"]
    for t in [*types, NO_SERVICE]:
        for s in run_thresholds(run, settings):
            sel = zb[(zb["type_service"] == t) & np.isclose(zb["seuil_minutes"], s)]
            layer[flag_column(t, s)] = layer["code_insee"].isin(set(sel["code_insee"]
                                                                    .astype(str)))
    layer["fictif"] = bool(run.fictif)
    gdf = gpd.GeoDataFrame(layer, geometry="geometry", crs=run.communes.crs)
    require_crs(gdf, file=str(run.run_dir / COMMUNES_FILE))
    return gdf.to_crs(CRS_INPUT_OUTPUT).reset_index(drop=True)


def service_layer(
    run: RunOutputs, dept: str, tables: Mapping[str, pd.DataFrame]
) -> gpd.GeoDataFrame:
    """Select the services in the département plus those outside nearest to its communes.

    A boolean column ``dans_departement`` tells them apart (families may use a service of
    the next département).

    Parameters
    ----------
    run
        A finished run (its services must declare their CRS).
    dept
        Département code.
    tables
        :func:`departement_tables` output (``acces_communes``: the nearest services).

    Returns
    -------
    geopandas.GeoDataFrame
        The services' columns and ``dans_departement``, EPSG:4326.
    """
    services = run.services
    used = set(tables["acces_communes"]["service_id"].dropna().astype(str))
    ids = services["service_id"].astype(str)
    in_dept = (services["code_dep"].astype(str) == dept) if "code_dep" in services.columns \
        else pd.Series(False, index=services.index)
    sel = services[in_dept | ids.isin(used)].copy()
    sel["dans_departement"] = in_dept[sel.index].to_numpy(dtype=bool)
    gdf = gpd.GeoDataFrame(sel, geometry="geometry", crs=services.crs)
    require_crs(gdf, file=str(run.run_dir / SERVICES_FILE))
    return gdf.to_crs(CRS_INPUT_OUTPUT).reset_index(drop=True)
