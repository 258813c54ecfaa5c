"""Département → ressort de cour d'appel, from the embedded table ``data/communes/cours_appel.csv``.

The table is transcribed from the Code de l'organisation judiciaire (article D311-1 and its
annex, tableau IV « Siège et ressort des cours d'appel »); its header comment cites the
source. It covers the 101 départements (Corsica 2A/2B → Bastia; Mayotte → Saint-Denis, chambre
d'appel de Mamoudzou). The fictional demo départements ("Z…") belong to no real court: they
get the label :data:`FICTIONAL_COURT`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import pandas as pd

from coverage.settings import COMMUNES_DATA_DIR, is_fictional_code

COURTS_FILE = COMMUNES_DATA_DIR / "cours_appel.csv"
#: Cour d'appel label of the fictional demo territory's départements.
FICTIONAL_COURT = "Cour fictive (territoire de démonstration FICTIF)"
#: Label for a département code absent from the table (not expected for current COG codes).
UNKNOWN_COURT = "inconnue"


@lru_cache(maxsize=1)
def courts_table() -> pd.DataFrame:
    """The département → cour d'appel table.

    Returns
    -------
    pandas.DataFrame
        Columns ``code_dep`` (str), ``cour_appel`` (str, the seat of the court), ``note``
        (str, may be empty); 101 rows.
    """
    df = pd.read_csv(COURTS_FILE, comment="#", dtype=str, keep_default_na=False)
    return df


def court_of(code_dep: str) -> str:
    """Cour d'appel of a département.

    Parameters
    ----------
    code_dep
        Département code ("01" … "95", "2A", "2B", "971" … "976", or a fictional "Z…").

    Returns
    -------
    str
        Seat of the cour d'appel ("Riom", "Bastia", …), :data:`FICTIONAL_COURT` for a
        fictional code, :data:`UNKNOWN_COURT` when absent from the table.
    """
    return _mapping().get(code_dep, FICTIONAL_COURT if is_fictional_code(code_dep)
                          else UNKNOWN_COURT)


def courts_for(codes_dep: Iterable[str]) -> list[str]:
    """:func:`court_of` for each code, in order."""
    return [court_of(str(c)) for c in codes_dep]


@lru_cache(maxsize=1)
def _mapping() -> dict[str, str]:
    t = courts_table()
    return dict(zip(t["code_dep"], t["cour_appel"], strict=True))
