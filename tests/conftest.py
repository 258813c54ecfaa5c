"""Shared fixtures: where the real reference data lives, and tiny helpers."""

from __future__ import annotations

import os
import shutil
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
    # measured at 0.7 s or more on a quiet 2-core machine (2026-12-02 afternoon):
    "test_cog.py::test_spreadsheet_forms_of_a_code_come_back",
    "test_batch.py::test_cli_demo_run_prints_fictional_label_and_summary",
    "test_rapport.py::test_rapport_proxy_gives_the_range",
    "test_limits.py::test_xlsx_xml_bomb_refused_on_its_uncompressed_size",
    "test_isochrones.py::test_demo_type_bands_are_true_to_node_minutes",
    "test_prepare.py::test_prepare_communes_on_real_france_matches_the_massif_central_reference",
    "test_io_services.py::test_shared_style_file_french_export",
    "test_waiting_app.py::test_page_rank_and_tension_on_a_hand_made_run",
    "test_layers.py::test_no_guarded_import_of_the_package",
    "test_export.py::test_public_csv_masks_small_waiting_counts_internal_does_not",
    "test_export.py::test_failure_leaves_no_partial_output",
    "test_io_services.py::test_invalid_services[fictional code]",
    "test_calibration.py::test_andorra_calibration",
    "test_batch_options.py::test_geojson_without_isochrones_is_refused_before_writing",
    "test_batch.py::test_cli_summary_text",
    "test_bounds.py::test_library_workers_below_one_is_refused",
    "test_io_services.py::test_invalid_services[unknown type]",
    "test_proxy_outputs.py::test_cli_links_with_the_road_engine_are_refused",
    "test_export.py::test_xlsx_sheets_headers_panes_and_method",
    "test_proxy_outputs.py::test_cli_bad_links_file_is_one_clear_line_and_nothing_written",
    "test_scenarios.py::test_random_changes_equal_a_full_computation[1-demo_proxy_run]",
    "test_isochrones.py::test_bands_of_a_sparse_jittered_network_are_valid",
    "test_io_services.py::test_swapped_coordinates_hint",
    "test_app_launch.py::test_router_stops_with_the_fix_when_coverage_py_shadows_us",
    "test_waiting.py::test_demo_figures_are_labelled_fictional",
    "test_bounds.py::test_coordinates_out_of_degrees_name_the_cell[200-44.9-lon]",
    "test_export.py::test_png_for_one_type_and_bad_choice",
    "test_bounds.py::test_capacity_out_of_range_names_the_cell[inf]",
    "test_bounds.py::test_capacity_out_of_range_names_the_cell[-2]",
    "test_bounds.py::test_capacity_out_of_range_names_the_cell[1e30]",
    "test_io_services.py::test_invalid_services[empty id]",
    "test_prepare.py::test_fetch_then_prepare_end_to_end",
    "test_bounds.py::test_coordinates_out_of_degrees_name_the_cell[2.44-95-lat]",
    "test_io_services.py::test_fixture_placement_and_precision",
    "test_waiting_returns.py::test_mixed_series_png_says_so",
    "test_io_services.py::test_services_across_the_border",
    "test_bounds.py::test_capacity_out_of_range_names_the_cell[10001]",
    "test_calibration.py::test_cli_calibrer_on_the_demo_road_graph",
    "test_bounds.py::test_coordinates_out_of_degrees_name_the_cell[2.44--1e300-lat]",
    "test_io_services.py::test_xlsx_services",
    "test_traveltime_exact.py::test_node_minutes_per_source_equal_networkx",
    "test_io_services.py::test_geojson_points",
    "test_io_services.py::test_invalid_services[empty source]",
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
    "test_isochrones.py::test_service_bands_drawn_by_two_processes_are_byte_identical",
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
    "test_io_communes.py::test_interior_points_are_geos_bit_for_bit_on_real_communes",
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
    # measured 2026-12-02 (``--durations``, loaded machine, ≳ 0.5 s on a quiet one); each
    # area keeps a quick test in the fast loop (named after the arrow)
    "test_cli_validate.py::test_console_script_exit_codes_without_traceback",
    "test_cli_validate.py::test_validate_demo_exits_0",  # → validate_bad_services_exits…
    "test_rapport.py::test_rapport_demo",  # → test_rapport_proxy_gives_the_range
    "test_rapport.py::test_rapport_demo_road_names_the_engine",
    "test_rapport.py::test_html_escapes_user_text",
    "test_rapport.py::test_waiting_lists_are_masked",
    "test_export.py::test_png_map_is_a_valid_image",  # → test_png_for_one_type_and_bad_choice
    "test_export.py::test_all_formats_default",
    "test_cli_export.py::test_public_and_internal_waiting_lists",
    "test_io_inputs.py::test_validate_demo",  # → test_validate_collects_errors_without_raising
    "test_io_inputs.py::test_load_inputs_fictional_services_use_the_demo_communes",
    "test_io_inputs.py::test_load_inputs_bad_road_extension",
    "test_io_inputs.py::test_load_inputs_real_files",
    "test_io_services.py::test_invalid_services[outside France]",
    "test_io_services.py::test_invalid_services[lon lat swapped]",
    "test_io_services.py::test_invalid_services[duplicate ids]",
    "test_io_services.py::test_invalid_services[unknown code]",
    "test_io_communes.py::test_merged_old_communes_are_dissolved",
    "test_io_communes.py::test_old_codes_remapped",
    "test_io_communes.py::test_invalid_communes[unknown code]",
    "test_io_communes.py::test_code_problems_are_collected_with_the_others",
    "test_demo.py::test_same_seed_same_bytes",  # → test_committed_files_match_the_generator
    "test_demo.py::test_write_demo_to_another_folder",
    "test_waiting.py::test_aggregation_properties",
    "test_waiting.py::test_charts_png",
    "test_waiting_app.py::test_charts_of_a_run_for_exports",  # → test_page_rank_and_tension…
    "test_waiting_app.py::test_two_uploaded_files_provenance_conflicts_and_partners",
    "test_waiting_app.py::test_page_in_the_app_on_the_demo",
    "test_waiting_app.py::test_valid_upload_replaces_the_run_data",
    "test_waiting_app.py::test_upload_errors_are_listed_without_traceback",
    "test_waiting_returns.py::test_cli_suivi_writes_the_shared_table",
    "test_waiting_returns.py::test_same_data_same_bytes",
    "test_waiting_returns.py::test_cli_run_with_bad_returns_writes_nothing",
    "test_waiting_returns.py::test_followup_xlsx_and_csv",
    "test_waiting_returns.py::test_bad_cell_one_line_nothing_written",
    "test_scenarios.py::test_random_changes_equal_a_full_computation[0-demo_road_run]",
    "test_scenarios.py::test_random_changes_equal_a_full_computation[1-demo_road_run]",
    "test_scenarios.py::test_random_changes_equal_a_full_computation[2-demo_road_run]",
    "test_scenarios.py::test_random_changes_equal_a_full_computation[0-demo_proxy_run]",
    "test_scenarios.py::test_random_changes_equal_a_full_computation[2-demo_proxy_run]",
    "test_siting.py::test_greedy_k2_on_demo_no_double_count",
    "test_siting.py::test_greedy_against_enumeration",
    "test_siting.py::test_massif_central_proxy_k1_brute_force",
    "test_siting_exact.py::test_cli_on_demo",
    "test_fetch.py::test_cli_fetch_unknown_departement",  # own process; → …offline… in-process
    "test_prepare.py::test_clip_real_extract_keeps_the_road_graph",
    "test_prepare.py::test_neighbour_departements_of_cantal_on_real_contours",
    "test_compare.py::test_french_csv_schemas_and_both_runs_recorded",
    "test_exports_honest.py::test_a_stale_file_edited_since_is_kept_and_named",
    "test_batch.py::test_cli_passes_the_geojson_flag_and_refuses_it_without_isochrones",
    "test_batch.py::test_cli_data_dir_layout",  # → test_cli_summary_text
    "test_batch.py::test_no_cache_recomputes",  # → test_threshold_change_recomputes_no…
    "test_batch.py::test_changed_service_reruns_only_its_partition",
    "test_batch.py::test_result_type",
    "test_batch_options.py::test_demo_default_folder_is_the_one_demo_run_folder",
    "test_io_services.py::test_territory_of_the_data_set",
    "test_io_services.py::test_old_code_remapped",
    "test_io_inputs.py::test_validate_collects_errors_without_raising",  # → …remapped_codes…
    "test_waiting.py::test_waiting_is_pure_pandas_and_its_contract_is_declared",
    "test_export.py::test_parquet_layers_and_masked_table",
    "test_export.py::test_xlsx_internal_and_without_waiting_lists",
    # modules of other owners, ≳ 1 s on a quiet machine
    "test_bounds.py::test_default_settings_are_in_range_and_library_settings_checked",
    "test_export_accessibility.py::test_xlsx_sheets_with_units",
    "test_layers.py::test_no_import_circle",  # → test_no_guarded_import_of_the_package
    "test_incremental.py::test_rerun_reuses_the_previous_tables_only_when_intact",
    "test_vectorised_outputs.py::test_csv_text_is_byte_identical_to_to_csv",
    "test_vectorised_outputs.py::test_weighted_percentiles_equal_previous_definition",
    "test_vectorised_outputs.py::test_access_grid_equals_previous_joins",
    "test_vectorised_outputs.py::test_spliced_csv_equals_a_whole_write",
    "test_layers.py::test_imports_point_down_and_never_to_the_faces",
    "test_layers.py::test_no_package_import_inside_a_function_outside_the_cli",
    "test_public_api.py::test_the_api_runs_the_demo_end_to_end",
    "test_imported_times.py::test_engine_of_a_matrice_run",
    "test_imported_times.py::test_matrice_without_table_is_refused",
    "test_imported_times.py::test_cli_run_with_temps_and_settings_file",
    "test_imported_times.py::test_full_road_matrix_gives_the_road_minutes",
    "test_imported_times.py::test_temps_reproduces_the_road_run_exactly",
    "test_imported_times.py::test_cli_bad_table_exits_2_and_writes_nothing",
    "test_imported_times.py::test_a_subset_of_services_finds_the_same_pairs",
    "test_reinterpretations.py::test_infinite_capacity_is_refused",
    "test_reinterpretations.py::test_service_far_from_its_commune",
    "test_reinterpretations.py::test_formula_cells_with_a_computed_value_are_read_and_said",
    "test_reinterpretations.py::test_layer_choices_reach_the_loaders",
    "test_export_accessibility.py::test_export_holds_the_runs_index",
    "test_export_accessibility.py::test_report_section_gives_the_departements_index",
    "test_untrusted_networks.py::test_run_refuses_a_network_of_another_territory",
    "test_ferry_rebuild.py::test_corsica_run_rebuilt_with_its_ferries",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of :data:`SLOW_MODULES`, :data:`SLOW_TESTS` and every browser test slow.

    A name of :data:`SLOW_TESTS` is ``module::function`` (every parameter set) or
    ``module::function[id]`` (that parameter set only).
    """
    for item in items:
        module = item.path.name
        COLLECTED_MODULES.add(module)
        COLLECTED_IDS.add(f"{module}::{item.name}")
        name = f"{module}::{item.originalname}" if hasattr(item, "originalname") else item.nodeid
        if (module in SLOW_MODULES or name in SLOW_TESTS
                or f"{module}::{item.name}" in SLOW_TESTS
                or item.get_closest_marker("browser") is not None):
            item.add_marker(pytest.mark.slow)


#: Test modules and ``module::name[id]`` collected in this session, before any deselection
#: (``tests/test_suite_marks.py`` checks that every parameter id of :data:`SLOW_TESTS` names
#: a collected test).
COLLECTED_MODULES: set[str] = set()
COLLECTED_IDS: set[str] = set()


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


def copy_run(run_dir: Path, dest: Path) -> Path:
    """Copy a finished run folder (its ``.cache`` too, not the exports other tests wrote there)
    to ``dest``; return ``dest``. Far cheaper than computing the run again."""
    shutil.copytree(run_dir, dest, ignore=lambda folder, _names: (
        ["exports"] if Path(folder) == run_dir else []))
    return dest


@pytest.fixture
def demo_road_copy(demo_road_run: Path, tmp_path: Path) -> Path:
    """A copy of :func:`demo_road_run` in this test's folder, for tests that alter a run."""
    return copy_run(demo_road_run, tmp_path / "demo")


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
