"""Column contracts of inputs and outputs, and their Frictionless Table Schema export.

Inputs are validated against these contracts by :mod:`coverage.io`; every output table is
written with a Table Schema JSON beside it (:func:`table_schema`). Output column names are a
public, versioned contract: change them only with a new ``OUTPUT_CONTRACT_VERSION``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "ACCESSIBILITE_COMMUNES",
    "ACCESSIBILITE_DEPARTEMENT",
    "ACCESSIBILITE_EPCI",
    "ACCESSIBILITE_SERVICES",
    "ACCES_COMMUNES",
    "CODE_DEP",
    "CODE_INSEE",
    "COMMUNES",
    "COMPARAISON_CONTRACTS",
    "CONFLITS_LISTES_ATTENTE",
    "COUVERTURE_COURS_APPEL",
    "COUVERTURE_DENSITE",
    "COUVERTURE_DEPARTEMENTS",
    "COUVERTURE_EPCI",
    "COUVERTURE_EPCI_DEPARTEMENT",
    "COUVERTURE_FRANCE",
    "COUVERTURE_REGIONS",
    "DENSITE",
    "LISTES_ATTENTE_DEPARTEMENTS",
    "MOTEUR",
    "NOM",
    "OUTPUT_CONTRACTS",
    "OUTPUT_CONTRACT_VERSION",
    "PERIODE",
    "POPULATION",
    "ROAD_FORMATS",
    "RURAL",
    "SERVICES",
    "SEUIL",
    "SOURCES_LISTES_ATTENTE",
    "SUIVI_LISTES_ATTENTE",
    "TYPE_PERIODE",
    "TYPE_SERVICE",
    "WAITING",
    "ZONES_BLANCHES",
    "Contract",
    "Field",
    "FieldType",
    "table_schema",
]


OUTPUT_CONTRACT_VERSION = "1.2"

FieldType = Literal["string", "integer", "number", "boolean", "date", "year", "geometry"]


@dataclass(frozen=True)
class Field:
    """One column of a contract.

    Parameters
    ----------
    name
        Column name.
    type
        Table Schema type.
    required
        Whether the column must be present (inputs) / non-empty.
    unit
        Unit of the values ("min", "km", "habitants", …), or "" when none.
    title
        Short French title.
    description
        French description, shown in the Table Schema and the README.
    """

    name: str
    type: FieldType
    required: bool = True
    unit: str = ""
    title: str = ""
    description: str = ""


@dataclass(frozen=True)
class Contract:
    """A table contract: its name, its fields and its primary key."""

    name: str
    title: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        """Column names in order."""
        return [f.name for f in self.fields]

    @property
    def required(self) -> list[str]:
        """Names of the required columns."""
        return [f.name for f in self.fields if f.required]

    def field(self, name: str) -> Field:
        """Return the field called ``name``."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def _f(name: str, type_: FieldType, title: str, description: str = "", *,
       unit: str = "", required: bool = True) -> Field:
    return Field(name, type_, required, unit, title, description)


# --- Shared fields -----------------------------------------------------------------------
CODE_INSEE = _f("code_insee", "string", "Code commune INSEE",
                "Code officiel géographique de la commune (COG en vigueur), 5 caractères, "
                "2A/2B pour la Corse.")
NOM = _f("nom", "string", "Nom")
CODE_DEP = _f("code_dep", "string", "Code département")
POPULATION = _f("population", "integer", "Population", "Population municipale légale.",
                unit="habitants")
DENSITE = _f("densite", "integer", "Niveau de densité",
             "Grille communale de densité INSEE : 1 dense … 4 très peu dense "
             "(ou 1 … 7 en grille à 7 niveaux).")
RURAL = _f("rural", "boolean", "Commune rurale",
           "Rurale au sens INSEE 2020 (densité 3 ou 4 de la grille à 4 niveaux).")
TYPE_SERVICE = _f("type_service", "string", "Type de service",
                  "mediation_familiale, espace_rencontre, ou aucun_service (vue combinée).")
SEUIL = _f("seuil_minutes", "number", "Seuil", "Seuil de temps d'accès.", unit="min")
PERIODE = _f("periode", "string", "Période",
              "2025 (année), 2025-S1 (semestre), 2025-T3 (trimestre), 2025-03 (mois) ou "
              "2025-03-31 (date d'observation).")
TYPE_PERIODE = _f("type_periode", "string", "Nature de la période",
                  "annee, semestre, trimestre, mois ou date.")
MOTEUR = _f("moteur", "string", "Moteur de calcul",
            "road : graphe routier OpenStreetMap ; proxy : distance à vol d'oiseau × "
            "facteur de détour ÷ vitesse par classe de densité.")

# --- Inputs ------------------------------------------------------------------------------
COMMUNES = Contract(
    "communes", "Communes",
    (
        CODE_INSEE, NOM, CODE_DEP, POPULATION, DENSITE, RURAL,
        _f("geometry", "geometry", "Contour", "Polygone de la commune."),
        _f("lon", "number", "Longitude", "Point représentatif (ex. chef-lieu), EPSG:4326.",
           unit="degrés", required=False),
        _f("lat", "number", "Latitude", "Point représentatif (ex. chef-lieu), EPSG:4326.",
           unit="degrés", required=False),
    ),
    ("code_insee",),
)

SERVICES = Contract(
    "services", "Services",
    (
        _f("service_id", "string", "Identifiant du service", "Unique dans le fichier."),
        TYPE_SERVICE,
        _f("nom", "string", "Nom du service"),
        _f("organisme", "string", "Organisme gestionnaire"),
        _f("adresse", "string", "Adresse", required=False),
        CODE_INSEE,
        _f("lon", "number", "Longitude", "EPSG:4326.", unit="degrés", required=False),
        _f("lat", "number", "Latitude", "EPSG:4326.", unit="degrés", required=False),
        _f("capacite", "number", "Capacité", "ETP (médiation) ou places (espace de rencontre).",
           required=False),
        _f("source", "string", "Source", "Origine de l'information (URL, liste CAF…)."),
        _f("date_source", "string", "Date de la source"),
    ),
    ("service_id",),
)

WAITING = Contract(
    "listes_attente", "Listes d'attente",
    (
        CODE_DEP, TYPE_SERVICE,
        _f("annee", "year", "Année"),
        _f("familles_en_attente", "integer", "Familles en attente",
           "Familles en liste d'attente au 31 décembre.", unit="familles"),
        _f("delai_moyen_jours", "number", "Délai moyen", "Délai moyen d'attente.",
           unit="jours"),
        _f("service_id", "string", "Identifiant du service", required=False),
    ),
)

ROAD_FORMATS: tuple[str, ...] = (".osm", ".osm.gz", ".osm.bz2", ".osm.pbf", ".graphml")

# --- Outputs -----------------------------------------------------------------------------
ACCES_COMMUNES = Contract(
    "acces_communes", "Temps d'accès au service le plus proche, par commune et type",
    (
        CODE_INSEE, NOM, CODE_DEP, POPULATION, DENSITE, RURAL, TYPE_SERVICE,
        _f("minutes", "number", "Temps d'accès",
           "Temps en voiture jusqu'au service le plus proche ; vide si inaccessible.",
           unit="min", required=False),
        _f("service_id", "string", "Service le plus proche", required=False),
        _f("distance_km", "number", "Distance routière",
           "Distance du trajet le plus rapide sur le réseau routier (moteurs road et "
           "matrice) ; vide avec le moteur proxy, qui ne connaît pas la route.",
           unit="km", required=False),
        MOTEUR,
        # issue 12 (appended: the earlier columns keep their places)
        _f("distance_estimee_km", "number", "Distance estimée (vol d'oiseau × détour)",
           "Moteur proxy : distance à vol d'oiseau × facteur de détour (traversées en bac "
           "exclues), une estimation ; vide avec les autres moteurs.",
           unit="km", required=False),
        _f("minutes_min", "number", "Temps d'accès, borne basse",
           "Moteur proxy : temps avec les paramètres optimistes (facteur de détour bas, "
           "settings.proxy_detour_bounds) ; vide avec les autres moteurs.",
           unit="min", required=False),
        _f("minutes_max", "number", "Temps d'accès, borne haute",
           "Moteur proxy : temps avec les paramètres pessimistes (facteur de détour haut) ; "
           "vide avec les autres moteurs.", unit="min", required=False),
        _f("raison", "string", "Raison de l'inaccessibilité",
           "Quand le temps est vide : « non accessible » (hors réseau, pas de chemin, aucun "
           "service du type) ou « pas de service sur l'île » (aucun service du type sur la "
           "masse terrestre de la commune, ni liaison maritime vers un service).",
           required=False),
    ),
    ("code_insee", "type_service"),
)

ZONES_BLANCHES = Contract(
    "zones_blanches", "Communes en zone blanche",
    (CODE_INSEE, NOM, CODE_DEP, POPULATION, TYPE_SERVICE, SEUIL,
     _f("raison", "string", "Raison",
        "« trop loin » (service le plus proche au-delà du seuil), « non accessible » ou "
        "« pas de service sur l'île ».", required=False)),
    ("code_insee", "type_service", "seuil_minutes"),
)


#: Low–high ranges of the white-zone figures (proxy engine; empty with the other engines).
_RANGE_FIELDS = (
    _f("communes_zone_blanche_min", "integer", "Communes en zone blanche, borne basse",
       "Moteur proxy : avec les paramètres optimistes (facteur de détour bas) ; vide avec "
       "les autres moteurs.", unit="communes", required=False),
    _f("communes_zone_blanche_max", "integer", "Communes en zone blanche, borne haute",
       "Moteur proxy : avec les paramètres pessimistes (facteur de détour haut).",
       unit="communes", required=False),
    _f("population_zone_blanche_min", "integer", "Population en zone blanche, borne basse",
       "Moteur proxy : avec les paramètres optimistes.", unit="habitants", required=False),
    _f("population_zone_blanche_max", "integer", "Population en zone blanche, borne haute",
       "Moteur proxy : avec les paramètres pessimistes.", unit="habitants", required=False),
)


def _coverage_fields(key: Sequence[Field]) -> tuple[Field, ...]:
    return (
        *key, TYPE_SERVICE, SEUIL,
        POPULATION,
        _f("population_couverte", "integer", "Population couverte",
           "Population des communes à moins du seuil.", unit="habitants"),
        _f("taux_couverture", "number", "Taux de couverture",
           "population_couverte / population.", unit="ratio 0-1", required=False),
        _f("communes_zone_blanche", "integer", "Communes en zone blanche", unit="communes"),
        _f("population_zone_blanche", "integer", "Population en zone blanche",
           unit="habitants"),
        *_RANGE_FIELDS,
        _f("minutes_mediane", "number", "Temps médian",
           "Médiane des temps d'accès des communes, pondérée par la population.",
           unit="min", required=False),
        _f("minutes_p90", "number", "Temps 90e centile",
           "90e centile des temps d'accès, pondéré par la population.", unit="min",
           required=False),
        _f("population_rurale", "integer", "Population rurale", unit="habitants"),
        _f("population_rurale_zone_blanche", "integer", "Population rurale en zone blanche",
           unit="habitants"),
    )


#: Whether the run holds every département of a unit (région, EPCI, cour d'appel, France),
#: from the national commune table (COG 2026) and the cours d'appel table.
_PARTIAL_FIELDS = (
    _f("couverture_partielle", "boolean", "Couverture partielle",
       "Vrai quand des départements de l'unité (table nationale des communes COG 2026) sont "
       "absents du calcul : les chiffres ne portent alors que sur ses communes du calcul. "
       "Faux aussi pour une unité inconnue de la table nationale (territoire fictif, code "
       "d'un autre millésime)."),
    _f("departements_manquants", "string", "Départements manquants",
       "Codes des départements de l'unité absents du calcul, séparés par « , » ; vide "
       "quand la couverture est complète.", required=False),
)


COUVERTURE_DEPARTEMENTS = Contract(
    "couverture_departements", "Couverture par département",
    _coverage_fields([CODE_DEP]), ("code_dep", "type_service", "seuil_minutes"),
)
COUVERTURE_REGIONS = Contract(
    "couverture_regions", "Couverture par région",
    (*_coverage_fields([_f("code_reg", "string", "Code région")]), *_PARTIAL_FIELDS),
    ("code_reg", "type_service", "seuil_minutes"),
)
COUVERTURE_EPCI = Contract(
    "couverture_epci", "Couverture par EPCI",
    (*_coverage_fields([_f("code_epci", "string", "SIREN de l'EPCI"),
                        _f("nom_epci", "string", "Nom de l'EPCI", required=False)]),
     *_PARTIAL_FIELDS),
    ("code_epci", "type_service", "seuil_minutes"),
)


def _departement_part(fields: Sequence[Field]) -> tuple[Field, ...]:
    """Return coverage fields retitled « … (communes du département) »."""
    return tuple(Field(f.name, f.type, f.required, f.unit, f"{f.title} (communes du "
                       f"département)", f.description)
                 if f.unit and f.name != "seuil_minutes" else f for f in fields)


#: An EPCI line of a département's export (and of the app): the département's communes of
#: the EPCI, with the whole EPCI (its communes of the run) beside them in ``*_epci`` columns.
COUVERTURE_EPCI_DEPARTEMENT = Contract(
    "couverture_epci_departement",
    "Couverture par EPCI — communes du département de chaque EPCI",
    (CODE_DEP,
     *_departement_part(_coverage_fields([_f("code_epci", "string", "SIREN de l'EPCI"),
                                          _f("nom_epci", "string", "Nom de l'EPCI",
                                             required=False)])),
     _f("population_epci", "integer", "Population de l'EPCI entier (communes du calcul)",
        "Population de toutes les communes de l'EPCI présentes dans le calcul, y compris "
        "hors du département.", unit="habitants", required=False),
     _f("population_zone_blanche_epci", "integer",
        "Population en zone blanche de l'EPCI entier (communes du calcul)",
        "Au même seuil, sur toutes les communes de l'EPCI présentes dans le calcul.",
        unit="habitants", required=False),
     _f("taux_couverture_epci", "number", "Taux de couverture de l'EPCI entier (communes du "
        "calcul)", "population_couverte / population sur toutes les communes de l'EPCI "
        "présentes dans le calcul.", unit="ratio 0-1", required=False),
     _f("couverture_partielle", "boolean", "Ligne partielle (EPCI hors du département)",
        "Vrai quand l'EPCI a des communes dans d'autres départements (table nationale des "
        "communes COG 2026) : la ligne ne porte que sur ses communes du département."),
     _f("departements_manquants", "string", "Autres départements de l'EPCI",
        "Codes des autres départements de l'EPCI, absents de la ligne, séparés par « , ».",
        required=False)),
    ("code_dep", "code_epci", "type_service", "seuil_minutes"),
)
COUVERTURE_COURS_APPEL = Contract(
    "couverture_cours_appel", "Couverture par ressort de cour d'appel",
    (*_coverage_fields([_f("cour_appel", "string", "Cour d'appel")]), *_PARTIAL_FIELDS),
    ("cour_appel", "type_service", "seuil_minutes"),
)
COUVERTURE_DENSITE = Contract(
    "couverture_densite", "Couverture par niveau de densité",
    _coverage_fields([DENSITE]), ("densite", "type_service", "seuil_minutes"),
)
COUVERTURE_FRANCE = Contract(
    "couverture_france", "Couverture, total de l'ensemble des communes du calcul",
    (*_coverage_fields([_f("territoire", "string", "Territoire",
                           "FR : France entière (tous les départements de métropole et des "
                           "DROM dans le calcul) ; FR-PARTIEL : communes réelles d'une partie "
                           "des départements seulement (voir perimetre) ; FICTIF : territoire "
                           "de démonstration fictif.")]),
     _f("perimetre", "string", "Périmètre du calcul",
        "Départements réellement couverts, ex. « 3 départements : 12, 15, 48 » ou « France "
        "entière (101 départements) »."),
     *_PARTIAL_FIELDS),
    ("territoire", "type_service", "seuil_minutes"),
)

#: Output of the waiting-list stage (:mod:`coverage.waiting`), one row per département, type
#: and year; definitions of the indicators in that module's docstring.
LISTES_ATTENTE_DEPARTEMENTS = Contract(
    "listes_attente_departements",
    "Listes d'attente par département, type de service et année",
    (
        CODE_DEP, TYPE_SERVICE,
        _f("annee", "year", "Année", "Année de l'activité (liste d'attente au 31 décembre)."),
        PERIODE, TYPE_PERIODE,
        _f("date_periode", "string", "Date de la période",
           "Fin de la période (AAAA-MM-JJ) : date à laquelle la liste d'attente est "
           "observée (axe du temps des graphiques)."),
        _f("services", "integer", "Services déclarants",
           "Services ayant une ligne dans les retours (vide : données départementales).",
           unit="services", required=False),
        _f("services_avec_liste", "integer", "Services avec liste d'attente",
           "Services ayant au moins une famille en attente au 31 décembre.",
           unit="services", required=False),
        _f("part_services_avec_liste", "number", "Part des services avec liste d'attente",
           "services_avec_liste / services ayant déclaré leur liste d'attente.",
           unit="ratio 0-1", required=False),
        _f("part_reference_nationale", "number", "Référence nationale",
           "Part des espaces de rencontre avec liste d'attente en France au 31/12/2018 "
           "(0,59 ; source : https://espace-rencontrelecreuset.fr/assemblee-generale-24-09-"
           "2020/). Vide pour les autres types.", unit="ratio 0-1", required=False),
        _f("familles_en_attente", "integer", "Familles en attente",
           "Familles en liste d'attente au 31 décembre (somme des services).",
           unit="familles", required=False),
        POPULATION,
        _f("familles_en_attente_pour_100k", "number", "Familles en attente pour 100 000 habitants",
           "familles_en_attente / population × 100 000.",
           unit="familles pour 100 000 habitants", required=False),
        _f("delai_moyen_jours", "number", "Délai moyen d'attente",
           "Moyenne des délais des services pondérée par leurs familles en attente "
           "(moyenne simple si aucune famille n'attend).", unit="jours", required=False),
        _f("familles_en_attente_variation", "number", "Variation des familles en attente",
           "Différence avec la période précédente de même nature (l'année précédente pour "
           "des données annuelles), en familles (vide sans période précédente). "
           "Type number : un écart peut être négatif, ce n'est pas un effectif.",
           unit="familles", required=False),
        _f("familles_en_attente_variation_pct", "number", "Variation des familles en attente (%)",
           "100 × variation / valeur de la période précédente (vide si celle-ci est 0 ou "
           "absente).", unit="%", required=False),
        _f("variation_delai_jours", "number", "Variation du délai moyen",
           "Différence avec la période précédente.", unit="jours", required=False),
        _f("variation_annuelle_familles", "number",
           "Variation sur un an des familles en attente",
           "Différence avec la même période un an plus tôt, en familles.",
           unit="familles", required=False),
        _f("variation_annuelle_familles_pct", "number",
           "Variation sur un an des familles en attente (%)",
           "100 × variation sur un an / valeur un an plus tôt (vide si 0 ou absente).",
           unit="%", required=False),
        _f("variation_delai_annuelle_jours", "number", "Variation sur un an du délai moyen",
           "Différence avec la même période un an plus tôt.", unit="jours", required=False),
        _f("familles_recues", "integer", "Familles reçues",
           "Familles reçues / accueillies (espaces de rencontre).", unit="familles",
           required=False),
        _f("mesures_judiciaires", "integer", "Mesures ordonnées par le juge",
           unit="mesures", required=False),
        _f("demandes_spontanees", "integer", "Demandes spontanées", unit="demandes",
           required=False),
        _f("entretiens_information", "integer", "Entretiens d'information",
           "Entretiens d'information préalable (médiation familiale).", unit="entretiens",
           required=False),
        _f("mediations", "integer", "Médiations",
           "Médiations familiales, quand le retour ne distingue pas engagées et terminées.",
           unit="médiations", required=False),
        _f("mediations_engagees", "integer", "Médiations engagées", unit="médiations",
           required=False),
        _f("mediations_terminees", "integer", "Médiations terminées", unit="médiations",
           required=False),
        _f("periodes_mixtes", "boolean", "Périodes de natures différentes",
           "Vrai quand la série du département et du type mêle des périodes de natures "
           "différentes (ex. années et trimestres) : les variations ne comparent que des "
           "périodes de même nature."),
        _f("fictif", "boolean", "Fictif", "Vrai pour le territoire de démonstration FICTIF."),
    ),
    ("code_dep", "type_service", "periode"),
)

#: Conflicts between returns of several sources for the same service (or département),
#: type and period (:func:`coverage.waiting.reconcile_returns`): one row per value set aside.
CONFLITS_LISTES_ATTENTE = Contract(
    "conflits_listes_attente",
    "Conflits entre retours de listes d'attente de sources différentes",
    (
        CODE_DEP, TYPE_SERVICE, PERIODE,
        _f("service_id", "string", "Identifiant du service",
           "Vide : ligne départementale.", required=False),
        _f("colonne", "string", "Colonne", "Mesure dont les valeurs diffèrent."),
        _f("valeur_retenue", "number", "Valeur retenue", required=False),
        _f("source_retenue", "string", "Source retenue"),
        _f("fichier_retenu", "string", "Fichier retenu"),
        _f("ligne_retenue", "integer", "Ligne retenue",
           "Ligne du fichier (1 = première ligne de données) ; vide pour une somme des "
           "services.", required=False),
        _f("valeur_ecartee", "number", "Valeur écartée", required=False),
        _f("source_ecartee", "string", "Source écartée"),
        _f("fichier_ecarte", "string", "Fichier écarté"),
        _f("ligne_ecartee", "integer", "Ligne écartée", required=False),
        _f("regle", "string", "Règle appliquée",
           "retour du service ; date de retour la plus récente ; seul retour daté ; fichier "
           "donné en dernier ; lignes par service plutôt que ligne départementale."),
        _f("fictif", "boolean", "Fictif", "Vrai pour le territoire de démonstration FICTIF."),
    ),
)

#: The shared follow-up table (:mod:`coverage.waiting_followup`), sent to the partners:
#: one row per département, type and period, small counts masked.
SUIVI_LISTES_ATTENTE = Contract(
    "suivi_listes_attente", "Suivi partagé des listes d'attente",
    (
        CODE_DEP, TYPE_SERVICE, PERIODE, TYPE_PERIODE,
        _f("date_periode", "date", "Date de la période", "Fin de la période."),
        _f("familles_en_attente", "integer", "Familles en attente", unit="familles",
           required=False),
        _f("delai_moyen_jours", "number", "Délai moyen d'attente",
           "Pondéré par les familles en attente.", unit="jours", required=False),
        _f("familles_en_attente_variation", "number",
           "Variation sur la période précédente", unit="familles", required=False),
        _f("variation_delai_jours", "number", "Variation du délai sur la période précédente",
           unit="jours", required=False),
        _f("variation_annuelle_familles", "number", "Variation sur un an",
           "Différence avec la même période un an plus tôt.", unit="familles",
           required=False),
        _f("variation_delai_annuelle_jours", "number", "Variation du délai sur un an",
           unit="jours", required=False),
        _f("services_attendus", "integer", "Services attendus",
           "Services du type dans le département (liste des services du run).",
           unit="services", required=False),
        _f("services_declarants", "integer", "Services déclarants",
           "Services attendus ayant un retour pour la période.", unit="services",
           required=False),
        _f("part_services_declarants", "number", "Part des services déclarants",
           "services_declarants / services_attendus.", unit="ratio 0-1", required=False),
        _f("services_manquants", "string", "Services sans retour",
           "Identifiants (et noms) des services attendus sans retour pour la période.",
           required=False),
        POPULATION,
        _f("population_zone_blanche", "integer", "Population en zone blanche",
           "Au seuil indiqué, d'après la couverture du run.", unit="habitants",
           required=False),
        _f("part_population_zone_blanche", "number", "Part de la population en zone blanche",
           unit="ratio 0-1", required=False),
        _f("seuil_minutes", "number", "Seuil de la zone blanche", unit="min",
           required=False),
        _f("sources", "string", "Sources", "Partenaires dont les retours ont été retenus."),
        _f("note", "string", "Note", "Ex. série mêlant des périodes de natures "
           "différentes.", required=False),
        _f("fictif", "boolean", "Fictif", "Vrai pour le territoire de démonstration FICTIF."),
    ),
    ("code_dep", "type_service", "periode"),
)

#: The « Sources » sheet of the follow-up: one row per return file.
SOURCES_LISTES_ATTENTE = Contract(
    "sources_listes_attente", "Fichiers de retours",
    (
        _f("fichier", "string", "Fichier"),
        _f("sha256", "string", "Empreinte SHA-256"),
        _f("source", "string", "Source", "CAF, MSA, cour d'appel, service ou autre."),
        _f("lignes", "integer", "Lignes", unit="lignes"),
        _f("ordre_fichier", "integer", "Ordre", "Position du fichier dans l'ordre donné "
           "(0 = premier) : à date de retour égale, le dernier fichier l'emporte."),
    ),
)

#: Every output contract, by name: a static table (nothing is registered at import).
# --- Accessibility index (zones-blanches accessibilite, issue 14) ------------------------
_ACC_UNIT = "ETP ou places pour 100 000 habitants"
_ACC_HEAD = (
    TYPE_SERVICE,
    _f("methode", "string", "Méthode",
       "2sfca (poids 1 jusqu'au seuil) ou e2sfca (poids décroissants par bande de temps, "
       "docs/accessibilite.md)."),
    _f("seuil_minutes", "number", "Aire de chalandise",
       "Temps d'accès jusqu'auquel un service est à portée.", unit="min"),
)
_ACC_TAIL = (MOTEUR, _f("fictif", "boolean", "Données fictives",
                        "Vrai pour le territoire de démonstration FICTIF."))
_ACC_LEVEL = (
    *_ACC_HEAD,
    _f("communes", "integer", "Communes"),
    _f("population", "number", "Population (demande)",
       "Somme de la colonne de demande des communes.", unit="habitants"),
    _f("communes_sans_service", "integer", "Communes sans service à portée",
       "Communes sans aucun service à portée (indice 0)."),
    _f("population_sans_service", "number", "Population sans service à portée",
       unit="habitants"),
    _f("indice_moyen_pour_100k", "number", "Indice moyen",
       "Moyenne de l'indice des communes pondérée par leur population ; vide quand la "
       "population est nulle.", unit=_ACC_UNIT),
    *_ACC_TAIL,
)
ACCESSIBILITE_COMMUNES = Contract(
    "accessibilite_communes", "Indice d'accessibilité par commune",
    (CODE_INSEE, NOM, CODE_DEP,
     _f("code_epci", "string", "SIREN de l'EPCI", required=False),
     _f("nom_epci", "string", "EPCI", required=False),
     _f("population", "number", "Population (demande)",
        "Colonne de demande choisie (population par défaut).", unit="habitants"),
     *_ACC_HEAD,
     _f("services_accessibles", "integer", "Services à portée",
        "Services à portée de la commune (temps ≤ seuil)."),
     _f("capacite_accessible", "number", "Capacité à portée",
        "Somme des capacités des services à portée, sans pondération.",
        unit="ETP ou places"),
     _f("indice_pour_100k", "number", "Indice d'accessibilité",
        "Capacité à portée partagée entre les habitants qui l'atteignent (2SFCA/E2SFCA) ; 0 "
        "sans service à portée.", unit=_ACC_UNIT),
     *_ACC_TAIL),
    primary_key=("code_insee", "type_service"),
)
ACCESSIBILITE_DEPARTEMENT = Contract(
    "accessibilite_departement", "Indice d'accessibilité du département",
    (CODE_DEP, *_ACC_LEVEL), primary_key=("code_dep", "type_service"),
)
ACCESSIBILITE_EPCI = Contract(
    "accessibilite_epci", "Indice d'accessibilité par EPCI (communes du département)",
    (_f("code_epci", "string", "SIREN de l'EPCI", required=False),
     _f("nom_epci", "string", "EPCI", required=False), *_ACC_LEVEL),
)
ACCESSIBILITE_SERVICES = Contract(
    "accessibilite_services", "Services pris en compte par l'indice d'accessibilité",
    (_f("service_id", "string", "Identifiant du service"), NOM,
     _f("code_insee", "string", "Commune du service", required=False),
     _f("capacite", "number", "Capacité",
        "Colonne capacite des services ; 1 quand elle manque.", unit="ETP ou places"),
     _f("demande_ponderee", "number", "Population à portée (pondérée)",
        "Population des communes à portée du service, pondérée par bande (E2SFCA).",
        unit="habitants"),
     _f("ratio_pour_100k", "number", "Rapport capacité / population",
        "Capacité du service divisée par la population à sa portée ; 0 quand elle est "
        "nulle.", unit=_ACC_UNIT),
     TYPE_SERVICE),
    primary_key=("service_id",),
)



# --- Comparison of two runs (``zones-blanches comparer``) --------------------------------
def _side(f: Field, side: str) -> Field:
    """Return a coverage field of run A or B: ``<name>_<side>``, titled « … (A) »."""
    return Field(f"{f.name}_{side}", f.type, False, f.unit, f"{f.title} ({side.upper()})",
                 f.description)


_COMPARED = ("population", "population_couverte", "taux_couverture", "communes_zone_blanche",
             "population_zone_blanche")
_CMP_LEVEL_TAIL = (
    *(_side(COUVERTURE_DEPARTEMENTS.field(n), s) for s in ("a", "b") for n in _COMPARED),
    _f("variation_taux_points", "number", "Variation du taux de couverture",
       "Taux de B moins taux de A.", unit="points de pourcentage", required=False),
    _f("variation_population_zone_blanche", "number",
       "Variation de la population en zone blanche", "Population en zone blanche de B "
       "moins celle de A.", unit="habitants", required=False),
)


def _cmp_level(name: str, title: str, key: Sequence[Field]) -> Contract:
    return Contract(name, title, (*key, TYPE_SERVICE, SEUIL, *_CMP_LEVEL_TAIL),
                    (*(f.name for f in key), "type_service", "seuil_minutes"))


#: Tables of ``zones-blanches comparer`` by file stem (A the older run, B the newer).
COMPARAISON_CONTRACTS: Mapping[str, Contract] = MappingProxyType({c.name: c for c in (
    Contract("comparaison_communes", "Communes qui entrent en zone blanche ou en sortent", (
        CODE_INSEE, NOM, CODE_DEP,
        _f("population", "integer", "Population", "Population municipale du calcul B.",
           unit="habitants"),
        TYPE_SERVICE, SEUIL,
        _f("changement", "string", "Changement",
           "« entre en zone blanche » (zone blanche dans B, pas dans A) ou « sort de la "
           "zone blanche »."),
        _f("minutes_a", "number", "Temps d'accès (A)",
           "Vide : aucun service accessible dans A.", unit="min", required=False),
        _f("minutes_b", "number", "Temps d'accès (B)",
           "Vide : aucun service accessible dans B.", unit="min", required=False)),
        ("code_insee", "type_service", "seuil_minutes")),
    _cmp_level("comparaison_departements", "Couverture par département, A et B", [CODE_DEP]),
    _cmp_level("comparaison_epci", "Couverture par EPCI, A et B",
               [_f("code_epci", "string", "SIREN de l'EPCI"),
                _f("nom_epci", "string", "Nom de l'EPCI", required=False)]),
    _cmp_level("comparaison_cours_appel", "Couverture par cour d'appel, A et B",
               [_f("cour_appel", "string", "Cour d'appel")]),
    Contract("comparaison_services", "Services ajoutés, retirés ou modifiés", (
        _f("service_id", "string", "Identifiant du service"),
        _f("changement", "string", "Changement", "ajouté, retiré ou modifié."),
        TYPE_SERVICE, _f("nom", "string", "Nom", required=False),
        _f("code_insee", "string", "Commune du service", required=False),
        _f("code_dep", "string", "Code département", required=False),
        _f("capacite_a", "number", "Capacité (A)", unit="ETP ou places", required=False),
        _f("capacite_b", "number", "Capacité (B)", unit="ETP ou places", required=False),
        _f("detail", "string", "Ce qui a changé",
           "Pour un service modifié : type, nom, commune, emplacement, capacité.",
           required=False)),
        ("service_id",)),
)})


OUTPUT_CONTRACTS: Mapping[str, Contract] = MappingProxyType({
    c.name: c
    for c in (
        ACCES_COMMUNES, ZONES_BLANCHES, COUVERTURE_DEPARTEMENTS, COUVERTURE_REGIONS,
        COUVERTURE_EPCI, COUVERTURE_COURS_APPEL, COUVERTURE_DENSITE, COUVERTURE_FRANCE,
        LISTES_ATTENTE_DEPARTEMENTS, CONFLITS_LISTES_ATTENTE,
    )
})


def table_schema(contract: Contract) -> dict[str, Any]:
    """Frictionless Table Schema (as a JSON-ready dict) of an output contract.

    Units are given in each field's ``unit`` property and in its description.
    """
    fields: list[dict[str, Any]] = []
    for f in contract.fields:
        d: dict[str, Any] = {"name": f.name, "type": f.type, "title": f.title}
        desc = f.description
        if f.unit:
            d["unit"] = f.unit
            desc = f"{desc} Unité : {f.unit}.".strip()
        if desc:
            d["description"] = desc
        if f.required:
            d["constraints"] = {"required": True}
        fields.append(d)
    schema: dict[str, Any] = {
        "$schema": "https://specs.frictionlessdata.io/schemas/table-schema.json",
        "name": contract.name,
        "title": contract.title,
        "version": OUTPUT_CONTRACT_VERSION,
        "fields": fields,
        "missingValues": [""],
    }
    if contract.primary_key:
        schema["primaryKey"] = list(contract.primary_key)
    return schema
