"""The CLI checks that ``import coverage`` is this project, not coverage.py."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import zones_blanches_entry


def test_entry_accepts_this_project() -> None:
    assert zones_blanches_entry.check_coverage_is_ours() is None


def test_entry_rejects_a_foreign_coverage_package(tmp_path: Path) -> None:
    fake = tmp_path / "coverage"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = '7.6.1'\n")
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import zones_blanches_entry
        sys.exit(zones_blanches_entry.main(["--version"]))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 3
    assert "coverage.py" in proc.stderr
    assert "pip uninstall coverage" in proc.stderr
    assert "Traceback" not in proc.stderr
