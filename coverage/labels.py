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
    "TYPE_LABELS",
    "TYPE_LABELS_PLURAL",
    "density_label",
    "engine_label",
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
    "proxy": "proxy : distance à vol d'oiseau × facteur de détour ÷ vitesse par classe "
             "de densité (estimation, pas un itinéraire)",
}
#: Engines, the short form (legends).
ENGINE_SHORT: Mapping[str, str] = {
    "road": "graphe routier OSM",
    "proxy": "estimation à vol d'oiseau",
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
