"""Every French word shown to users about types, engines, density levels and fictional data.

One home for the labels: the CLI, the app, the maps, the exports and the reports take them
from here, so that a service type or an engine is named the same way everywhere and the
FICTIONAL wording of the demo cannot drift between outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from coverage.settings import NO_SERVICE

__all__ = [
    "CHANGE_ENTERING",
    "CHANGE_LEAVING",
    "CHART_NUMBER_LOCALE",
    "CHART_TIME_LOCALE",
    "DEMO_CHOICE",
    "DENSITY_LABELS",
    "DISTANCE_COLUMN_TITLES",
    "ENGINE_LABELS",
    "ENGINE_SHORT",
    "FICTIONAL_BANNER",
    "FICTIONAL_CHART_NOTE",
    "FICTIONAL_COURT",
    "FICTIONAL_DEFAULT_LABEL",
    "FICTIONAL_LABEL",
    "FICTIONAL_LEGEND",
    "FICTIONAL_SHORT",
    "FICTIONAL_SIDEBAR",
    "FICTIONAL_TERRITORY",
    "FICTIONAL_TITLE",
    "FICTIONAL_WAITING",
    "OTHER_FICTIONAL_LABEL",
    "PLACEHOLDER_CHOICE",
    "PLACEHOLDER_CHOICES",
    "RANGE_NOTE",
    "REASON_ISLAND",
    "REASON_TOO_FAR",
    "REASON_UNREACHABLE",
    "SERVICE_ADDED",
    "SERVICE_CHANGED",
    "SERVICE_REMOVED",
    "SITING_TITLES",
    "TYPE_LABELS",
    "TYPE_LABELS_PLURAL",
    "WHOLE_FRANCE_LABEL",
    "density_label",
    "departements_label",
    "empty_offer_warning",
    "engine_label",
    "fr_decimal",
    "fr_int",
    "fr_minutes",
    "fr_percent",
    "type_label",
]

#: Service types, capitalised singular (map legends, app selectors, table cells).
TYPE_LABELS: Mapping[str, str] = {
    "mediation_familiale": "Médiation familiale",
    "espace_rencontre": "Espace de rencontre",
    NO_SERVICE: "Tous services (vue combinée)",
}
#: Service types, plural (titles of series and charts).
TYPE_LABELS_PLURAL: Mapping[str, str] = {
    "mediation_familiale": "Médiation familiale",
    "espace_rencontre": "Espaces de rencontre",
    NO_SERVICE: "Tous services (vue combinée)",
}

#: Engines, the long form (method sheets, captions): what the minutes are.
ENGINE_LABELS: Mapping[str, str] = {
    "road": "road : temps de trajet sur le graphe routier OpenStreetMap",
    "proxy": "proxy : temps d'accès de chaque extrémité selon sa densité + distance à vol "
             "d'oiseau × facteur de détour à une vitesse croissant avec la distance "
             "(estimation, pas un itinéraire)",
    "matrice": "matrice : temps importés d'un tableau fourni (Metric, OSRM, Valhalla, "
               "openrouteservice…) ; paire absente du tableau = injoignable",
}
#: Engines, the short form (legends).
ENGINE_SHORT: Mapping[str, str] = {
    "road": "graphe routier OSM",
    "proxy": "estimation à vol d'oiseau",
    "matrice": "temps importés (tableau fourni)",
}

#: INSEE density levels (grille communale de densité, 4 levels).
DENSITY_LABELS: Mapping[int, str] = {
    1: "1 — dense",
    2: "2 — intermédiaire",
    3: "3 — peu dense",
    4: "4 — très peu dense",
}

#: The one word that marks fictional data (tables' ``territoire`` column, banners).
FICTIONAL_SHORT = "FICTIF"
#: ``territoire`` value of the national total of a fictional run.
FICTIONAL_TERRITORY = FICTIONAL_SHORT
#: Title line put above every export of the demo.
FICTIONAL_TITLE = "TERRITOIRE FICTIF (démonstration)"
#: The demo territory's label, wherever it appears.
FICTIONAL_LABEL = (
    "Territoire FICTIF « Brumeval » (démonstration) : lieux, routes, services et listes "
    "d'attente inventés, aucune donnée réelle."
)
#: Label of fictional inputs other than the embedded demo (codes « Z… » made up for a test).
OTHER_FICTIONAL_LABEL = (
    "Données FICTIVES : communes (codes « Z… ») et services inventés pour un essai ; aucune "
    "population réelle."
)
#: Banner drawn on maps of fictional data.
FICTIONAL_BANNER = "FICTIF — données de démonstration, pas un territoire réel"
#: Cour d'appel label of the fictional demo territory's départements.
FICTIONAL_COURT = "Cour fictive (territoire de démonstration FICTIF)"
#: The demo's entry in the app's data-set selector.
DEMO_CHOICE = "Démo (territoire FICTIF)"
#: Placeholder of the app's single-choice lists (Streamlit's own is English).
PLACEHOLDER_CHOICE = "Choisir…"
#: Placeholder of the app's multiple-choice lists.
PLACEHOLDER_CHOICES = "Choisir une ou plusieurs valeurs…"


def type_label(type_service: str, *, plural: bool = False) -> str:
    """French label of a service type (the code itself when unknown).

    Parameters
    ----------
    type_service
        A service type code (``mediation_familiale``, ``espace_rencontre``, ``aucun_service``).
    plural
        The plural form (``Espaces de rencontre``).

    Returns
    -------
    str
        The label.
    """
    labels = TYPE_LABELS_PLURAL if plural else TYPE_LABELS
    return labels.get(type_service, type_service)


def engine_label(engine: str, *, short: bool = False) -> str:
    """French label of an engine (``road``, ``proxy``), the code itself when unknown."""
    return (ENGINE_SHORT if short else ENGINE_LABELS).get(engine, engine)


def density_label(level: int) -> str:
    """French label of an INSEE density level 1–4 (the number itself when unknown)."""
    return DENSITY_LABELS.get(int(level), str(level))


#: Warning of the app's sidebar when the open run is fictional.
FICTIONAL_SIDEBAR = "FICTIF : territoire de démonstration inventé, pas un lieu réel."
#: Line of a map legend when the data are fictional.
FICTIONAL_LEGEND = "FICTIF — territoire de démonstration"
#: Default description of a fictional run whose manifest has no label (app banners).
FICTIONAL_DEFAULT_LABEL = "territoire de démonstration inventé"
#: Warning of the app's waiting-list page on the demo's made-up waiting lists.
FICTIONAL_WAITING = ("FICTIF — listes d'attente inventées du territoire de démonstration : "
                     "aucune donnée réelle.")
#: Note at the foot of the waiting-list charts of fictional data (PNG exports).
FICTIONAL_CHART_NOTE = "DONNÉES FICTIVES — territoire de démonstration, pas un lieu réel"


# --- Reasons, estimated distances, ranges, empty offer (issue 12) ------------------------
#: Why a commune is in a white zone: its nearest service is beyond the threshold.
REASON_TOO_FAR = "trop loin"
#: … or it has no route to any service (off the road network, no path, no service at all).
REASON_UNREACHABLE = "non accessible"
#: … or its land mass (island) has no service of the type and no ferry link to one.
REASON_ISLAND = "pas de service sur l'île"

#: Title of the km column of ``acces_communes`` by engine (XLSX, PNG, app).
DISTANCE_COLUMN_TITLES: Mapping[str, str] = {
    "distance_km": "Distance routière (km)",
    "distance_estimee_km": "Distance estimée (vol d'oiseau × détour)",
}

#: How the low–high ranges of the proxy are made (tables, CLI, app).
RANGE_NOTE = ("bornes basse et haute : paramètres du proxy à leurs bornes plausibles "
              "(facteur de détour {low} à {high})")


def empty_offer_warning(type_service: str, dept: str | None = None) -> str:
    """Return the French warning of an empty offer: no service of a type (in a département).

    Parameters
    ----------
    type_service
        Service type code.
    dept
        Département code, or None for the whole list.
    """
    label = type_label(type_service)
    if dept is None:
        return (f"Aucun service « {label} » dans la liste des services : tout le territoire "
                "est en zone blanche pour ce type.")
    return (f"Aucun service « {label} » dans le département {dept} : ses communes dépendent "
            "des services des départements voisins.")


# --- French number formats (reports, CLI messages) ----------------------------------------
def fr_int(value: float) -> str:
    """Return a whole number in French: thousands separated by a space (``12 345``)."""
    return f"{round(value):,}".replace(",", " ")


def fr_decimal(value: float, digits: int = 1) -> str:
    """Return a decimal number in French: decimal comma, thousands space (``1 234,5``)."""
    return f"{value:,.{digits}f}".replace(",", " ").replace(".", ",")


#: French number formats of the app's charts (Vega ``config.locale``, d3-format): decimal
#: comma, narrow space for thousands and before « % » (« 12,5 % »).
CHART_NUMBER_LOCALE: Mapping[str, object] = {
    "decimal": ",", "thousands": "\u202f", "grouping": [3], "currency": ["", "\u00a0€"],
    "percent": "\u202f%", "minus": "−",
}


#: French dates of the app's charts (Vega ``config.locale``, d3-time-format): month and day
#: names on time axes (« avril 2025 », not « April »).
CHART_TIME_LOCALE: Mapping[str, object] = {
    "dateTime": "%A %e %B %Y à %X", "date": "%d/%m/%Y", "time": "%H:%M:%S",
    "periods": ["", ""],
    "days": ["dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"],
    "shortDays": ["dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam."],
    "months": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
               "septembre", "octobre", "novembre", "décembre"],
    "shortMonths": ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août",
                    "sept.", "oct.", "nov.", "déc."],
}


def fr_minutes(value: float) -> str:
    """Return a threshold or a duration in whole or half minutes: ``30 min``, ``22,5 min``."""
    value = float(value)
    return f"{fr_decimal(value, 0 if value.is_integer() else 1)} min"


def fr_percent(share: float, digits: int = 1) -> str:
    """Return a share (0–1) as a French percentage: ``0.125`` → ``12,5 %``."""
    return f"{fr_decimal(100.0 * share, digits)} %"


# --- Perimeter of a run's totals (couverture_france, issue 13) ----------------------------
#: ``perimetre`` of a national total that covers every département of France (metro + DROM).
WHOLE_FRANCE_LABEL = "France entière ({n} départements)"


def departements_label(codes: Sequence[str], *, fictional: bool = False) -> str:
    """Return « 3 départements : 12, 15, 48 » (« 1 département fictif : ZA »).

    Parameters
    ----------
    codes
        Département codes, in the order to write them.
    fictional
        The départements are those of the fictional demo territory.
    """
    n = len(codes)
    noun = "département" if n == 1 else "départements"
    adjective = (" fictif" if n == 1 else " fictifs") if fictional else ""
    return f"{n} {noun}{adjective} : {', '.join(codes)}"


# --- Run-to-run comparison (zones-blanches comparer, issue 14) ----------------------------
#: ``changement`` of a commune that is a white zone in the second run and not in the first.
CHANGE_ENTERING = "entre en zone blanche"
#: … and of one that was a white zone in the first run and is no longer in the second.
CHANGE_LEAVING = "sort de la zone blanche"
#: ``changement`` of a service present in the second run only, the first only, or both
#: with different details.
SERVICE_ADDED = "ajouté"
SERVICE_REMOVED = "retiré"
SERVICE_CHANGED = "modifié"


# --- New sites (zones-blanches sites, issue 14) -------------------------------------------
#: Column titles of the new-sites tables (maximal covering and p-median); ``{base}`` is the
#: base of the counts (« dép. 48 »), stated in every population title.
SITING_TITLES: Mapping[str, str] = {
    "rang": "Rang",
    "code_insee": "Code INSEE",
    "nom": "Candidat",
    "population_nouvellement_couverte": "Pop. nouvellement couverte ({base})",
    "communes_nouvellement_couvertes": "Communes nouvellement couvertes ({base})",
    "population_nouvellement_couverte_hors_departement": "Pop. des voisins (à part)",
    "population_couverte_cumulee": "Pop. couverte cumulée ({base})",
    "population_zone_blanche_restante": "Pop. restant en zone blanche ({base})",
    "population_rattachee": "Pop. rattachée ({base})",
    "communes_rattachees": "Communes rattachées ({base})",
    "minutes_moyennes_avant": "Minutes moyennes avant ({base})",
    "minutes_moyennes_apres": "Minutes moyennes après ({base})",
    "population_rattachee_hors_departement": "Pop. des voisins rattachée (à part)",
}
