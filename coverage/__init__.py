"""zones-blanches: white zones in France's offer of family mediation and espaces de rencontre.

The public API, what a notebook needs::

    import coverage as zb

    inputs = zb.load_inputs()                       # the FICTIONAL demo, or communes=…, services=…
    engine = zb.make_engine(roads=inputs.roads)     # road (OSM graph) or proxy (no road file)
    access = zb.nearest_services(inputs.communes, inputs.services, engine=engine)
    zones = zb.white_zones(access, thresholds=(20, 30, 45))
    tables = zb.coverage_tables(access, inputs.communes, thresholds=(20, 30, 45))
    bands = zb.isochrones_types(engine, inputs.communes, inputs.services)
    sites = zb.plan_new_sites(inputs.communes, access, inputs.services, engine,
                              type_service="espace_rencontre", threshold_min=30, k=3)
    result = zb.run_batch(inputs, out_dir="sorties/demo")   # partitions, cache, manifest
    run = zb.open_run("sorties/demo")
    zb.export_departement(run, "ZA", out_dir="exports/ZA")

Everything else stays importable from its own module (each lists its public names in
``__all__``); ``docs/architecture.md`` gives the layers.

The names are resolved on first use (PEP 562, no import of the pipeline here), so that
``import coverage.settings`` or the command line do not load geopandas, matplotlib and the
whole pipeline (0.1 s instead of 2 s measured on the development machine). The import name
``coverage`` is shared with coverage.py; ``__project__`` lets the entry points check that
the package found on ``sys.path`` is this one.
"""

from __future__ import annotations

import importlib
from typing import Any

from coverage._version import __project__, __version__

#: Public name → (module, attribute in that module).
_API: dict[str, tuple[str, str]] = {
    "load_inputs": ("coverage.io.inputs", "load_inputs"),
    "make_engine": ("coverage.routing", "make_engine"),
    "engine_of_run": ("coverage.routing", "engine_of_run"),
    "nearest_services": ("coverage.whitezones", "nearest_services"),
    "is_white_zone": ("coverage.whitezones", "is_white_zone"),
    "white_zones": ("coverage.whitezones", "white_zones"),
    "coverage_tables": ("coverage.whitezones", "coverage_tables"),
    "isochrones_types": ("coverage.isochrones", "isochrones_types"),
    "isochrones_services": ("coverage.isochrones", "isochrones_services"),
    "plan_new_sites": ("coverage.siting", "plan_new_sites"),
    "run_batch": ("coverage.batch", "run_batch"),
    "RunOptions": ("coverage.batch", "RunOptions"),
    "open_run": ("coverage.results", "load_finished_run"),
    "RunOutputs": ("coverage.results", "RunOutputs"),
    "export_departement": ("coverage.export", "export_departement"),
}

__all__ = [
    "RunOptions",
    "RunOutputs",
    "__project__",
    "__version__",
    "coverage_tables",
    "engine_of_run",
    "export_departement",
    "is_white_zone",
    "isochrones_services",
    "isochrones_types",
    "load_inputs",
    "make_engine",
    "nearest_services",
    "open_run",
    "plan_new_sites",
    "run_batch",
    "white_zones",
]


def __getattr__(name: str) -> Any:
    """Return a public name of the API, importing its module on first use."""
    try:
        module, attribute = _API[name]
    except KeyError:
        msg = f"module 'coverage' has no attribute {name!r}"
        raise AttributeError(msg) from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the public API."""
    return sorted(__all__)
