"""Build ``data/communes/chefs_lieux_cog2026.csv``: préfectures and sous-préfectures.

Reads ``departements.json`` (``chefLieu``: the préfecture) and ``arrondissements.json``
(``chefLieu``: the sous-préfecture, or the préfecture for its own arrondissement) of the npm
package ``@etalab/decoupage-administratif@6.0.0``, fetched with ``npm pack`` in a temporary
folder (the npm registry is the only network access; the same package as
``scripts/build_communes_table.py``). The maps label these communes first
(:func:`coverage.maps.place_labels`).

Code MIT, data Licence Ouverte — « Source : Etalab – découpage administratif ».

Usage: ``python scripts/build_chefs_lieux.py [--out data/communes] [--package-dir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from build_communes_table import fetch_package

from coverage.files import atomic_path

OUT_FILE = "chefs_lieux_cog2026.csv"
OUT_DIR = Path(__file__).resolve().parents[1] / "data" / "communes"


def build(data: Path) -> pd.DataFrame:
    """Return one row per chef-lieu: ``code_insee, chef_lieu`` (prefecture/sous-prefecture)."""
    deps = json.loads((data / "departements.json").read_text(encoding="utf-8"))
    arrs = json.loads((data / "arrondissements.json").read_text(encoding="utf-8"))
    pref = {str(d["chefLieu"]) for d in deps if d.get("chefLieu")}
    sous = {str(a["chefLieu"]) for a in arrs if a.get("chefLieu")} - pref
    rows = ([(c, "prefecture") for c in sorted(pref)]
            + [(c, "sous-prefecture") for c in sorted(sous)])
    return pd.DataFrame(rows, columns=["code_insee", "chef_lieu"])


def main(argv: list[str] | None = None) -> int:
    """Fetch the package (or read ``--package-dir``) and write the table atomically."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--package-dir", type=Path, default=None,
                        help="the package's data folder, already extracted")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="zb-chefs-lieux-") as tmp:
        data = args.package_dir or fetch_package(Path(tmp))
        table = build(data)
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / OUT_FILE) as tmp_path:
        table.to_csv(tmp_path, index=False, lineterminator="\n")
    print(f"{len(table)} chefs-lieux written to {args.out / OUT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
