"""Every French word shown to users about types, engines, density levels and fictional data.

One home for the labels: the CLI, the app, the maps, the exports and the reports take them
from here, so that a service type or an engine is named the same way everywhere and the
FICTIONAL wording of the demo cannot drift between outputs.
"""

from __future__ import annotations

from collections.abc import Mapping

from coverage.settings import NO_SERVICE

__all__ = [
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
    "RANGE_NOTE",
    "REASON_ISLAND",
    "REASON_TOO_FAR",
    "REASON_UNREACHABLE",
    "TYPE_LABELS",
    "TYPE_LABELS_PLURAL",
    "density_label",
    "empty_offer_warning",
    "engine_label",
    "fr_decimal",
    "fr_int",
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


def fr_percent(share: float, digits: int = 1) -> str:
    """Return a share (0–1) as a French percentage: ``0.125`` → ``12,5 %``."""
    return f"{fr_decimal(100.0 * share, digits)} %"
