"""Upload of a services CSV: validate it with the loader, recompute the département's access.

The file goes through :func:`coverage.io.services.load_services` (the same validation as the
CLI) against the run's communes. Problems are shown in the page, one line per file / row /
column, never as a traceback. A valid file replaces the run's services for the selected
département only, in this browser session: the access times are recomputed with the run's
engine (``road`` when its road file is still readable, else ``proxy``, and the page says
so), then the map and the tables use them.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import streamlit as st

from coverage.app import state
from coverage.errors import CoverageError, InputError
from coverage.settings import REPO_ROOT, Settings, metric_crs_for

if TYPE_CHECKING:
    from coverage.results import RunOutputs

log = logging.getLogger(__name__)

#: Largest services file accepted by the app, bytes.
MAX_UPLOAD_BYTES = 5_000_000


def problems_frame(exc: InputError) -> pd.DataFrame:
    """One row per problem of an :class:`InputError`: fichier, ligne, colonne, attendu, trouvé."""
    return pd.DataFrame(
        {
            "fichier": [Path(p.file).name for p in exc.problems],
            "ligne": [p.row for p in exc.problems],
            "colonne": [p.column or "" for p in exc.problems],
            "attendu": [p.expected for p in exc.problems],
            "trouvé": [p.found or "" for p in exc.problems],
        }
    )


def _run_settings(run: RunOutputs) -> Settings:
    """Settings of the run from its manifest when they are there (defaults otherwise)."""
    raw = run.manifest.get("settings") or run.manifest.get("parameters") or {}
    base = Settings()
    kwargs: dict[str, Any] = {}
    if isinstance(raw, dict):
        if raw.get("thresholds_min"):
            kwargs["thresholds_min"] = tuple(float(t) for t in raw["thresholds_min"])
        for name in ("snap_max_m", "access_speed_kmh", "proxy_detour_factor"):
            if isinstance(raw.get(name), (int, float)):
                kwargs[name] = float(raw[name])
    if run.thresholds:
        kwargs["thresholds_min"] = tuple(run.thresholds)
    from dataclasses import replace

    return replace(base, max_input_bytes=MAX_UPLOAD_BYTES, **kwargs)


def _roads_path(run: RunOutputs) -> Path | None:
    """Road file of the run, from its manifest, when it still exists."""
    inputs = run.manifest.get("inputs") or {}
    candidates: list[Any] = []
    if isinstance(inputs, dict):
        roads = inputs.get("roads")
        candidates.append(roads.get("path") if isinstance(roads, dict) else roads)
    paths = run.manifest.get("paths") or {}
    if isinstance(paths, dict):
        candidates.append(paths.get("roads"))
    engine = run.manifest.get("engine") or {}
    if isinstance(engine, dict) and isinstance(engine.get("parameters"), dict):
        candidates.append(engine["parameters"].get("reseau"))
    for c in candidates:
        if not c:
            continue
        p = Path(str(c))
        for q in (p, REPO_ROOT / p, run.run_dir / p):
            if q.exists():
                return q.resolve()
    return None


@st.cache_resource(show_spinner=False, max_entries=2)
def road_engine(roads: str, crs: str) -> Any:
    """The road engine of a road file (graph built once per process, shared read-only)."""
    from coverage.routing.road import make_engine

    return make_engine("road", Path(roads), Settings(), crs)


def engine_for(run: RunOutputs, dept: str, settings: Settings) -> tuple[Any, str]:
    """The run's engine for a département, and a note naming it.

    ``road`` when the run was routed and its road file is still readable (the graph is
    built once per process, :func:`road_engine`), else ``proxy``, with the reason.
    """
    engine: Any = None
    note = ""
    if run.engine == "road":
        roads = _roads_path(run)
        if roads is not None:
            try:
                engine = road_engine(str(roads), metric_crs_for(dept))
                note = f"road : graphe routier du run ({roads.name})"
            except CoverageError as exc:
                note = f"proxy : le réseau routier du run n'a pas pu être chargé ({exc})"
        else:
            note = ("proxy : le fichier routier du run n'est plus disponible ; temps "
                    "estimés à vol d'oiseau")
    if engine is None:
        from coverage.routing.proxy import ProxyEngine

        engine = ProxyEngine(settings)
        note = note or "proxy : distance à vol d'oiseau × détour ÷ vitesse (comme le run)"
    return engine, note


def recompute_access(
    run: RunOutputs, dept: str, services: gpd.GeoDataFrame, settings: Settings,
) -> tuple[pd.DataFrame, str, str]:
    """Access of a département's communes to the given services.

    Returns
    -------
    tuple
        The ``acces_communes`` rows, the engine name (``road``/``proxy``) and a note
        explaining the engine choice.
    """
    from coverage.whitezones import access_table

    communes = run.communes[run.communes["code_dep"].astype(str) == dept]
    types = state.run_types(run)
    engine, note = engine_for(run, dept, settings)
    nearest = engine.nearest(communes, services, service_types=types)
    access = access_table(communes, nearest, service_types=types)
    return access.reset_index(drop=True), str(engine.name), note


def render_services_upload(sel: state.Selection, run: RunOutputs) -> None:
    """Upload widget, validation messages and recomputation for the sidebar."""
    st.caption(
        "CSV au format du modèle `data/services/modele_services.csv` "
        f"(≤ {MAX_UPLOAD_BYTES // 1_000_000} Mo). Remplace les services du run pour ce "
        "département, dans cette session seulement."
    )
    f = st.file_uploader("Fichier de services (CSV)", type=["csv"], key="services_upload")
    current = st.session_state.get(state.UPLOAD_KEY)
    if f is None:
        if current is not None:
            st.session_state.pop(state.UPLOAD_KEY, None)
        return
    token = (f.file_id, sel.run_dir, sel.dept)
    if current is not None and current.get("token") == token:
        st.success(f"{current['name']} : {len(current['services'])} services, temps "
                   f"recalculés ({current['note']}).")
        return
    if f.size > MAX_UPLOAD_BYTES:
        st.error(f"{f.name} : {f.size / 1e6:.1f} Mo, au-delà de la limite de "
                 f"{MAX_UPLOAD_BYTES / 1e6:.0f} Mo.")
        return
    settings = _run_settings(run)
    try:
        from coverage.io.services import load_services

        with tempfile.TemporaryDirectory(prefix="zb-upload-") as tmp:
            path = Path(tmp) / Path(f.name).name
            path.write_bytes(f.getvalue())
            loaded = load_services(path, communes=run.communes, settings=settings)
        services = loaded.data
        with st.spinner("Recalcul des temps d'accès du département…"):
            access, engine, note = recompute_access(run, sel.dept, services, settings)
    except InputError as exc:
        st.error(f"{f.name} n'est pas valide ({len(exc.problems)} problème(s)) :")
        st.dataframe(problems_frame(exc), hide_index=True, width="stretch")
        return
    except CoverageError as exc:
        st.error(f"{f.name} : {exc}")
        return
    except Exception as exc:  # shown in the page, never as a traceback
        log.exception("recomputation with %s failed", f.name)
        st.error(f"{f.name} : le recalcul a échoué ({type(exc).__name__} : {exc}).")
        return
    for w in loaded.warnings:
        st.warning(w)
    st.session_state[state.UPLOAD_KEY] = {
        "token": token, "run_dir": sel.run_dir, "dept": sel.dept, "name": f.name,
        "services": services, "access": access, "engine": engine, "note": note,
    }
    st.success(f"{f.name} : {len(services)} services, temps recalculés ({note}).")
