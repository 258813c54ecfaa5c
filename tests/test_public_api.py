"""The public API of ``import coverage as zb``: every name resolves to its one home."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import coverage as zb


@pytest.mark.parametrize("name", sorted(zb._API))
def test_every_public_name_is_the_object_of_its_module(name: str) -> None:
    module, attribute = zb._API[name]
    assert getattr(zb, name) is getattr(importlib.import_module(module), attribute)
    assert name in zb.__all__ and name in dir(zb)


def test_all_lists_exactly_the_api() -> None:
    assert set(zb.__all__) == {"__project__", "__version__", *zb._API}


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = zb.no_such_thing


def test_light_import_does_not_load_the_pipeline() -> None:
    code = ("import sys, coverage, coverage.settings; "
            "print(sorted(m for m in ('geopandas', 'matplotlib', 'coverage.batch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_the_api_runs_the_demo_end_to_end(tmp_path) -> None:  # type: ignore[no-untyped-def]
    inputs = zb.load_inputs()
    engine = zb.make_engine("proxy")
    access = zb.nearest_services(inputs.communes, inputs.services, engine=engine)
    zones = zb.white_zones(access, thresholds=(20, 30))
    assert set(zones["seuil_minutes"]) <= {20.0, 30.0}
    white = access[zb.is_white_zone(access["minutes"], 30)]
    assert set(zones.loc[(zones["seuil_minutes"] == 30)
                         & (zones["type_service"] == "espace_rencontre"), "code_insee"]) == \
        set(white.loc[white["type_service"] == "espace_rencontre", "code_insee"])
    tables = zb.coverage_tables(access, inputs.communes, thresholds=(20, 30))
    assert "couverture_departements" in tables
