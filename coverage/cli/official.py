"""``zones-blanches fetch`` and ``prepare``: read the arguments, call the library, print."""

from __future__ import annotations

import argparse
import contextlib

from coverage.io.official import sources
from coverage.io.official.cache import INDEX_NAME, cache_dir
from coverage.io.official.fetch import FetchOptions, fetch
from coverage.io.official.prepare import prepare
from coverage.labels import fr_int

__all__ = ["fetch_from_cli", "prepare_from_cli"]


def fetch_from_cli(args: argparse.Namespace) -> int:
    """Run ``zones-blanches fetch``: fetch, then print one line per file.

    Returns
    -------
    int
        The exit code (0).
    """
    options = FetchOptions(
        timeout_s=getattr(args, "timeout", None) or FetchOptions.timeout_s,
        retries=(args.retries if getattr(args, "retries", None) is not None
                 else FetchOptions.retries),
        mirror=args.mirror,
    )
    year = args.year or sources.DEFAULT_YEAR
    generalisation = getattr(args, "generalisation", None) or sources.DEFAULT_GENERALISATION
    records = fetch(args.dept, args.data_dir, year=year, generalisation=generalisation,
                    osm=not args.no_osm,
                    neighbours=not getattr(args, "no_neighbours", False), options=options)
    print(f"Données ouvertes officielles dans {cache_dir(args.data_dir)} "
          f"(index : {cache_dir(args.data_dir) / INDEX_NAME}) :")
    for r in records:
        extra = f"  [{r.note}]" if r.note else ""
        print(f"  {r.key:<12} {fr_int(r.size):>13} o  sha256 {r.sha256[:12]}…  "
              f"{r.path}{extra}")
    with contextlib.suppress(Exception):
        depts = " ".join(sources.normalise_dept(d) for d in args.dept)
        print(f"Étape suivante : zones-blanches prepare --dept {depts} --data-dir "
              f"{args.data_dir}")
    return 0


def prepare_from_cli(args: argparse.Namespace) -> int:
    """Run ``zones-blanches prepare``: prepare, then print the files written.

    Returns
    -------
    int
        The exit code (0).
    """
    depts = [sources.normalise_dept(d) for d in args.dept]
    results = prepare(depts, args.data_dir)
    for code, paths in results.items():
        print(f"Département {code} :")
        for key, label in (("communes", "communes"), ("roads", "routes"),
                           ("manifest", "manifeste")):
            if paths[key].exists():
                print(f"  {label:<9} {paths[key]}")
        if not paths["services"].exists():
            print(f"  services  (aucun : placez votre propre liste dans {paths['services']} ; "
                  "il n'existe pas de liste officielle ouverte de ces services)")
        print(f"Étape suivante : zones-blanches run --dept {code} --data-dir {args.data_dir}")
    return 0
