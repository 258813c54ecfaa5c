"""Page « À propos »: sources, vintages, licences, method, limits, fictional label."""

from __future__ import annotations

import streamlit as st

from coverage.app import state, views
from coverage.labels import fr_minutes
from coverage.results import run_thresholds, sources
from coverage.settings import Settings

__all__: list[str] = []

sel = state.selection()
run = state.run_of(sel)
st.title("À propos")
views.fictional_banner(run, "Ses codes de département commencent par Z, qui n'existe pas "
                       "dans le COG : il ne peut pas être confondu avec un territoire réel.")

st.header("Sources et licences")
st.markdown(
    """
- **Contours des communes** — « Source : IGN – Admin Express COG » (millésime du fichier
  de communes du run, voir ci-dessous), Licence Ouverte Etalab 2.0.
- **Code officiel géographique, EPCI, populations** — « Etalab – découpage administratif »
  (paquet npm `@etalab/decoupage-administratif`, millésime COG 2026), Licence Ouverte
  (données) / MIT (code) ; populations légales et grille communale de densité : **INSEE**,
  Licence Ouverte.
- **Réseau routier** (moteur `road`) — « © les contributeurs d'OpenStreetMap (ODbL) ».
- **Services** (médiation familiale, espaces de rencontre) — listes fournies par
  l'utilisateur (CAF, MSA…) ; la source et sa date sont dans les colonnes `source` et
  `date_source` de chaque service.
- **Cartes** — Leaflet 1.9.4 (BSD-2-Clause) et jQuery 3.7.1 (MIT), servis par
  l'application elle-même (`static/vendor`) ; aucun fond de carte n'est chargé par défaut.
"""
)
try:
    rows = sources(run)
except Exception as exc:  # the page must still show the rest
    rows = []
    st.caption(f"Sources du run non lisibles : {exc}")
if rows:
    st.subheader("Sources de ce run")
    st.table({"Source": [s for s, _ in rows], "Licence": [lic for _, lic in rows]})
created = (run.manifest.get("created_utc") or run.manifest.get("created")
           or run.manifest.get("date"))
st.caption(f"Run : {run.run_dir}" + (f", calculé le {created}" if created else "")
           + f". Moteur : {run.engine}. Seuils : "
           + ", ".join(fr_minutes(t) for t in run_thresholds(run)) + ".")
inputs = run.manifest.get("inputs")
if isinstance(inputs, dict) and inputs:
    with st.expander("Fichiers d'entrée du run (chemins et empreintes SHA-256)"):
        views.show_table(
            {
                "entrée": list(inputs),
                "fichier": [str(v.get("path", "")) if isinstance(v, dict) else str(v)
                            for v in inputs.values()],
                "sha256": [str(v.get("sha256", ""))[:16] if isinstance(v, dict) else ""
                           for v in inputs.values()],
            },
        )

st.header("Méthode")
st.markdown(
    f"""
- Pour chaque commune, le **temps en voiture jusqu'au service le plus proche** de chaque
  type est calculé depuis son point représentatif (chef-lieu).
- Moteur **`road`** : temps sur le graphe routier OpenStreetMap (vitesses par classe de
  route et `maxspeed`, plus court chemin de Dijkstra multi-sources).
- Moteur **`proxy`** : un temps d'accès à chaque extrémité du trajet selon son niveau de
  densité INSEE, plus la distance à vol d'oiseau × facteur de détour
  ({str(Settings().proxy_detour_factor).replace(".", ",")}) parcourue à une vitesse qui
  croît avec la distance ; les trajets restent sur leur île (sauf liaison maritime donnée).
  C'est une **estimation**, utilisée quand aucun réseau routier n'est fourni ; chaque temps
  est étiqueté par son moteur, la distance s'appelle « distance estimée », et chaque
  chiffre de zone blanche a une fourchette (détour 1,2 à 1,45).
- Une commune est en **zone blanche** pour un seuil (20, 30 ou 45 min par défaut) quand
  son service le plus proche est à plus que ce seuil, ou inaccessible. La vue combinée
  « Tous services » prend le plus proche des services de tous types.
- Taux de couverture = population des communes couvertes ÷ population ; temps médian et
  90e centile pondérés par la population.
"""
)
st.header("Limites")
st.markdown(
    """
- Un temps par commune (depuis son chef-lieu) : les écarts à l'intérieur d'une grande
  commune ne sont pas vus, et toute sa population est comptée couverte ou non.
- Temps à vitesse libre, sans congestion ni transports en commun ; le moteur `proxy`
  ignore les obstacles (relief, cours d'eau, lacs).
- La capacité des services et les listes d'attente ne changent pas les temps d'accès.
- Les bandes isochrones sont un affichage ; les chiffres viennent des temps par commune.
- Les contours sont simplifiés pour l'affichage : environ 75 m pour les communes du département,
  250 m pour les communes voisines, 50 m pour les bandes isochrones.
"""
)
