"""The walk-through notebook executes from top to bottom on the FICTIONAL demo."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "demo_walkthrough.ipynb"


def test_notebook_says_fictional() -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "FICTIONAL" in first.source


def test_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("ZB_NOTEBOOK_OUT", str(tmp_path / "run"))
    monkeypatch.setenv("ZB_PROGRESS", "0")
    # Streamlit (AppTest in the same session) sets MPLBACKEND=Agg; the kernel must draw inline.
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
        if o.get("output_type") == "stream")
    assert "FICTIONAL" in text and "Engine: road" in text
    assert (tmp_path / "run" / "manifest.json").exists()
    assert (tmp_path / "run" / "tables" / "couverture_departements.csv").exists()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors == []
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) == 1  # the map


def test_notebook_uses_the_public_api() -> None:
    """Only ``import coverage as zb`` (and the FICTIONAL label) — no reach into the modules."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    imports = [line.strip() for line in code.splitlines()
               if line.strip().startswith(("import coverage", "from coverage"))]
    assert "import coverage as zb" in imports
    assert set(imports) <= {"import coverage as zb", "from coverage.labels import FICTIONAL_LABEL"}
    for name in ("load_inputs", "make_engine", "nearest_services", "white_zones",
                 "coverage_tables", "isochrones_types", "plan_new_sites", "run_batch",
                 "open_run", "export_departement"):
        assert f"zb.{name}(" in code, name
