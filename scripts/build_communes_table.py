"""Build the embedded national commune tables from ``@etalab/decoupage-administratif``.

Runs ``npm pack @etalab/decoupage-administratif@6.0.0`` in a temporary folder (the npm
registry is the only network access), reads the package's JSON files and writes, atomically:

- ``data/communes/communes_cog2026.csv.gz``: one row per current commune (type
  ``commune-actuelle``, COG 2026) with its département, région, EPCI and legal population;
- ``data/communes/passage_codes_cog2026.csv.gz``: older or subordinate commune codes →
  current code (``anciensCodes`` of current communes, codes of ``commune-deleguee`` /
  ``commune-associee`` → their ``chefLieu``, municipal arrondissements → their commune), with
  ``ambigu`` = True when one old code leads to several current communes.

Code MIT, data Licence Ouverte — « Source : Etalab – découpage administratif ».

Usage: ``python scripts/build_communes_table.py [--out data/communes] [--package-dir DIR]``
(``make communes-data``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coverage.files import atomic_path

PACKAGE = "@etalab/decoupage-administratif@6.0.0"
OUT_DIR = Path(__file__).resolve().parents[1] / "data" / "communes"
COMMUNES_FILE = "communes_cog2026.csv.gz"
PASSAGE_FILE = "passage_codes_cog2026.csv.gz"

log = logging.getLogger("build_communes_table")


def fetch_package(workdir: Path) -> Path:
    """``npm pack`` the package into ``workdir`` and extract it; return its ``data`` folder."""
    npm = shutil.which("npm")
    if npm is None:
        msg = "npm is needed to fetch the package (apt-get install npm)"
        raise SystemExit(msg)
    out = subprocess.run([npm, "pack", PACKAGE, "--silent"], cwd=workdir, check=True,
                         capture_output=True, text=True)
    tgz = workdir / out.stdout.strip().splitlines()[-1]
    with tarfile.open(tgz) as tar:
        tar.extractall(workdir, filter="data")
    return workdir / "package" / "data"


def _load(data_dir: Path, name: str) -> list[dict[str, Any]]:
    with open(data_dir / name, encoding="utf-8") as fh:
        data: list[dict[str, Any]] = json.load(fh)
    return data


def build_tables(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The current-commune table and the old-code passage table from the package's JSON."""
    communes = _load(data_dir, "communes.json")
    deps = {d["code"]: d["nom"] for d in _load(data_dir, "departements.json")}
    regs = {r["code"]: r["nom"] for r in _load(data_dir, "regions.json")}
    epci_of: dict[str, tuple[str, str]] = {}
    for e in _load(data_dir, "epci.json"):
        for m in e["membres"]:
            epci_of[m["code"]] = (e["code"], e["nom"])

    rows = []
    for c in communes:
        if c["type"] != "commune-actuelle":
            continue
        code_epci, nom_epci = epci_of.get(c["code"], ("", ""))
        rows.append({
            "code_insee": c["code"],
            "nom": c["nom"],
            "code_dep": c["departement"],
            "nom_dep": deps.get(c["departement"], ""),
            "code_reg": c["region"],
            "nom_reg": regs.get(c["region"], ""),
            "zone": c["zone"],
            "code_epci": code_epci,
            "nom_epci": nom_epci,
            "population": c.get("population"),
        })
    table = pd.DataFrame(rows).sort_values("code_insee", ignore_index=True)
    table["population"] = table["population"].astype("Int64")
    current = set(table["code_insee"])

    pairs: list[tuple[str, str, str]] = []
    for c in communes:
        if c["type"] == "commune-actuelle":
            pairs += [(old, c["code"], "ancien-code") for old in c.get("anciensCodes", [])]
        elif c["type"] in ("commune-deleguee", "commune-associee") and c.get("chefLieu"):
            pairs.append((c["code"], c["chefLieu"], c["type"]))
        elif c["type"] == "arrondissement-municipal" and c.get("commune"):
            pairs.append((c["code"], c["commune"], c["type"]))
    passage = (pd.DataFrame(pairs, columns=["code_ancien", "code_actuel", "source"])
               .drop_duplicates(["code_ancien", "code_actuel"])
               .sort_values(["code_ancien", "code_actuel"], ignore_index=True))
    unknown_target = ~passage["code_actuel"].isin(current)
    if unknown_target.any():
        log.warning("%d passage rows point to no current commune; dropped",
                    int(unknown_target.sum()))
        passage = passage[~unknown_target].reset_index(drop=True)
    n_targets = passage.groupby("code_ancien")["code_actuel"].transform("nunique")
    passage["ambigu"] = n_targets > 1
    passage["code_actuel_aussi"] = passage["code_ancien"].isin(current)
    return table, passage


def write_tables(table: pd.DataFrame, passage: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write both tables as gzip CSV (UTF-8), atomically; return the paths."""
    paths = []
    for df, name in ((table, COMMUNES_FILE), (passage, PASSAGE_FILE)):
        target = out_dir / name
        with atomic_path(target) as tmp, open(tmp, "wb") as fh, \
                gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
            # no file name and mtime=0 in the gzip header: reproducible bytes
            gz.write(df.to_csv(index=False).encode("utf-8"))
        paths.append(target)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--package-dir", type=Path,
                        help="an already extracted package 'data' folder (skips npm)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.package_dir or fetch_package(Path(tmp))
        table, passage = build_tables(data_dir)
        paths = write_tables(table, passage, args.out)
    log.info("%d current communes, %d passage rows (%d ambiguous old codes)", len(table),
             len(passage), passage.loc[passage["ambigu"], "code_ancien"].nunique())
    for p in paths:
        log.info("written %s (%d bytes)", p, p.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
