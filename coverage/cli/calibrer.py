"""``zones-blanches calibrer``: fit the proxy's parameters to real road times, print a report.

Real times come from a road file (``--roads``: every pair of commune points timed by the
road engine's bounded matrix) or from a time table (``--temps``: INSEE Metric, OSRM …). The
fit and its figures are those of :mod:`coverage.routing.calibration`; the fitted parameters are
written to a JSON settings file that ``zones-blanches run --settings FILE`` reads.
"""

from __future__ import annotations

import argparse
import json
import sys

from coverage.errors import CoverageError
from coverage.files import write_text_atomic
from coverage.routing import make_engine
from coverage.routing.calibration import (
    CalibrationPoints,
    PairTimes,
    calibrate,
    pairs_from_engine,
    pairs_from_table,
    read_points,
    report_lines,
    settings_document,
)
from coverage.routing.imported import read_times
from coverage.settings import Settings, settings_with_overrides

__all__ = ["ROAD_CUTOFF_MIN", "calibrer_from_cli"]

#: Longest pair timed on a road graph, minutes (longer pairs are left out).
ROAD_CUTOFF_MIN = 180.0


def _pairs(args: argparse.Namespace, frame: object, points: CalibrationPoints,
           settings: Settings) -> PairTimes:
    """Return the real minutes: from ``--temps`` when given, else timed on ``--roads``."""
    if args.temps is not None:
        table = read_times(args.temps, unit=args.temps_unite, settings=settings)
        return pairs_from_table(table, points)
    if args.roads is None:
        msg = "calibrer demande des temps réels : donnez --roads FICHIER ou --temps FICHIER"
        raise CoverageError(msg)
    engine = make_engine("road", args.roads, settings)
    return pairs_from_engine(engine, frame, points,  # type: ignore[arg-type]
                             cutoff_min=ROAD_CUTOFF_MIN, source=args.roads.name)


def calibrer_from_cli(args: argparse.Namespace) -> int:
    """Run ``zones-blanches calibrer``: read, time, fit, print the report, write the file.

    Returns
    -------
    int
        0. Errors are raised as :class:`CoverageError` (nothing is written then).
    """
    settings = settings_with_overrides(Settings(), dict(getattr(args, "overrides", []) or []))
    frame = read_points(args.communes, densite=args.densite, settings=settings)
    points = CalibrationPoints.from_frame(frame)
    pairs = _pairs(args, frame, points, settings)
    if pairs.minutes.shape[0] == 0:
        msg = ("calibrer : aucune paire de communes n'a pu être chronométrée (points hors du "
               "réseau routier ?)")
        raise CoverageError(msg)
    cal = calibrate(points, pairs, settings)
    for line in report_lines(cal):
        print(line)
    if args.out is not None:
        write_text_atomic(args.out, json.dumps(settings_document(cal), ensure_ascii=False,
                                               indent=1) + "\n")
        print(f"Paramètres écrits dans {args.out} (zones-blanches run --settings {args.out}).")
    sys.stdout.flush()
    return 0
