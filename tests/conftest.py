"""Shared fixtures: where the real reference data lives, and tiny helpers."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DATA = Path(__file__).resolve().parent / "data"
SHARED_DATA = Path(os.environ.get("ZB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
#: The app's background warming of other départements (coverage.app.state) is off in the
#: tests' own process (AppTest): a daemon thread outliving a test would load the next ones.
#: The browser tests start the real app with it on (tests/test_browser.py).
os.environ.setdefault("ZONES_BLANCHES_NO_WARM", "1")


#: Tests measured above ~1.3 s on a 2-core development machine, or modules whose shared
#: fixture builds a run: marked ``slow`` here so that ``pytest -m "not slow"`` is a loop of
#: under 2 minutes (``make test`` runs everything). Browser tests are always slow.
SLOW_MODULES = frozenset({
    "test_app.py", "test_app_carte.py", "test_browser.py", "test_dask.py", "test_network_shared.py",
    "test_notebook.py", "test_run_folder.py", "test_outputs_safety.py",
})
SLOW_TESTS = frozenset({
    "test_french_ui.py::test_cli_outputs_on_the_demo_are_french",
    "test_french_ui.py::test_run_log_lines_are_french",
    "test_french_ui.py::test_bad_inputs_give_french_lines",
    "test_french_ui.py::test_export_and_sites_find_the_demo_run_from_any_directory",
    "test_french_ui.py::test_every_app_page_is_french",
    "test_french_ui.py::test_refused_services_file_is_french",
    "test_incremental.py::test_incremental_rerun_is_byte_identical_to_a_full_run",
    "test_incremental.py::test_second_incremental_change_and_an_undo",
    "test_incremental.py::test_national_incremental_rerun_equals_full",
    "test_scenarios.py::test_page_scenarios_add_remove_move_side_by_side",
    "test_siting_exact.py::test_mclp_equals_spopt_on_the_same_matrix",
    "test_siting_exact.py::test_cli_lozere_filters_and_base",
    "test_siting.py::test_k1_equals_brute_force_on_demo",
    "test_siting.py::test_page_nouveau_site",
    "test_siting.py::test_cli_sites",
    "test_isochrones.py::test_write_isochrones_layers_display_and_geojson",
    "test_isochrones.py::test_demo_service_bands_are_true_to_each_services_minutes",
    "test_whitezones.py::test_aggregates_random_frames_brute_force",
    "test_whitezones.py::test_massif_central_proxy_brute_force",
    "test_batch.py::test_run_writes_isochrones",
    "test_batch.py::test_kill_and_resume_gives_identical_outputs",
    "test_batch.py::test_cli_bad_dept_exits_nonzero_without_output",
    "test_cli_validate.py::test_validate_real_shared_data",
    "test_prepare.py::test_fetch_prepare_run_one_path",
    "test_prepare.py::test_cli_prepare_exit_codes",
    "test_settings.py::test_cli_set_is_applied_and_checked",
    "test_io_communes.py::test_real_national_with_density_grid",
    "test_app_launch.py::test_cli_app_serves_the_app_on_loopback",
    "test_fetch.py::test_cli_fetch_through_a_mirror",
    "test_cli_export.py::test_export_all_formats_default_folder",
    "test_cli_export.py::test_console_script_prints_no_traceback",
    "test_rapport.py::test_app_exports_page_builds_the_report",
    "test_accessibility.py::test_run_index_equals_pysal_on_the_engines_matrix",
    "test_accessibility.py::test_cli_on_the_demo_run",
    "test_accessibility.py::test_app_page_map_and_tables",
    "test_accessibility.py::test_matrice_run_is_timed_by_its_table",
    "test_compare.py::test_lists_exactly_the_communes_that_changed",
    "test_compare.py::test_cli_writes_tables_workbook_map",
    "test_compare.py::test_same_run_no_change_and_spreadsheet_safe",
    "test_compare.py::test_shared_scope_and_warnings",
    "test_compare.py::test_app_page_compares_with_the_open_run",
    "test_compare.py::test_services_changed_removed_and_types_apart",
    "test_exports_honest.py::test_stale_export_is_detected_removed_and_redone",
    "test_exports_honest.py::test_default_formats_are_those_of_the_readme",
    "test_exports_honest.py::test_massif_central_partial_flags_and_millau_everywhere",
    "test_exports_honest.py::test_app_epci_table_equals_the_exports_demo",
    "test_exports_honest.py::test_app_exports_page_builds_each_file_on_demand",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of :data:`SLOW_MODULES`, :data:`SLOW_TESTS` and every browser test slow."""
    for item in items:
        module = item.path.name
        name = f"{module}::{item.originalname}" if hasattr(item, "originalname") else item.nodeid
        if (module in SLOW_MODULES or name in SLOW_TESTS
                or item.get_closest_marker("browser") is not None):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real reference data (``../shared/data``); skips when it is absent."""
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"real reference data not found at {SHARED_DATA} (../shared/data beside the "
                    "checkout, or set ZB_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tests_data() -> Path:
    """Folder of the tiny hand-written fixtures (``tests/data``)."""
    return TESTS_DATA


@pytest.fixture(scope="session")
def demo_road_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the FICTIONAL demo, road engine, no isochrones: made once per session.

    Read-only for the tests that use it (they may write exports under ``<run>/exports``).
    """
    from coverage.batch import RunOptions, run_batch
    from coverage.io.inputs import load_inputs

    out = tmp_path_factory.mktemp("session_road") / "demo"
    run_batch(load_inputs(), out_dir=out, options=RunOptions(workers=1, isochrones=False))
    return out


@pytest.fixture(scope="session")
def demo_proxy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the FICTIONAL demo, proxy engine, no isochrones: made once per session."""
    from coverage.batch import RunOptions, run_batch
    from coverage.io.inputs import load_inputs

    out = tmp_path_factory.mktemp("session_proxy") / "demo"
    run_batch(load_inputs(), out_dir=out,
              options=RunOptions(engine="proxy", isochrones=False, workers=1))
    return out


@pytest.fixture(autouse=True)
def _restore_main_module() -> Iterator[None]:
    """Streamlit's AppTest replaces ``sys.modules["__main__"]`` with the page script; restore
    it so that later tests starting processes with "spawn" (Dask, the batch's pool) do not
    re-run that script in their children."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main
