"""Exceptions of zones-blanches.

Every error the tool raises on purpose derives from :class:`CoverageError`. Input problems
carry one :class:`Problem` per bad cell so the CLI and the app can print one clear line each
(file, row, column, what was expected) instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "CRSError",
    "ChecksumError",
    "CoverageError",
    "DuplicateIdError",
    "EmptyInputError",
    "FetchError",
    "FileTooLargeError",
    "InputError",
    "MissingCRSError",
    "MissingColumnError",
    "NetworkError",
    "NotFoundError",
    "OfflineError",
    "OutOfTerritoryError",
    "OutputError",
    "Problem",
    "UnknownCodeError",
    "UnsupportedFormatError",
]



class CoverageError(Exception):
    """Base class of every error raised on purpose by zones-blanches."""


@dataclass(frozen=True)
class Problem:
    """One problem in an input file.

    Parameters
    ----------
    file
        Path or name of the file.
    row
        1-based data row number (header excluded), or ``None`` for a whole-file problem.
    column
        Column name, or ``None`` when the problem is not about one column.
    expected
        What was expected, in plain words.
    found
        What was found (the cell value, shortened), or ``None``.
    """

    file: str
    row: int | None
    column: str | None
    expected: str
    found: str | None = None

    def __str__(self) -> str:
        """Return the one-line message: file, row, column, what was expected and found."""
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        text = f"{where}: expected {self.expected}"
        if self.found is not None:
            text += f", found {self.found!r}"
        return text


class InputError(CoverageError, ValueError):
    """An input file is malformed. ``problems`` lists every bad row/column found."""

    def __init__(self, problems: Iterable[Problem] | Problem, message: str | None = None):
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        if message is None:
            message = "\n".join(str(p) for p in self.problems) or "invalid input"
        super().__init__(message)


class EmptyInputError(InputError):
    """The file has no data row."""


class MissingColumnError(InputError):
    """A required column is absent."""


class DuplicateIdError(InputError):
    """An identifier that must be unique appears more than once."""


class UnknownCodeError(InputError):
    """A commune code is neither a current COG code nor a known older one."""


class OutOfTerritoryError(InputError):
    """Coordinates fall outside the territory of the data set."""


class FileTooLargeError(InputError):
    """The file is larger than the configured size limit."""


class UnsupportedFormatError(InputError):
    """The file's format or extension is not one the loaders read."""


class CRSError(CoverageError, ValueError):
    """A coordinate reference system is missing or two CRSs do not match."""


class MissingCRSError(InputError, CRSError):
    """A geographic input file declares no CRS, or its coordinates contradict the one implied."""


class NetworkError(CoverageError):
    """A road network could not be built or used."""


class FetchError(CoverageError):
    """An official data download failed."""


class NotFoundError(FetchError):
    """The server answered 404/410: the file does not exist at that URL."""


class ChecksumError(FetchError):
    """The downloaded bytes do not have the expected SHA-256 (or the published MD5)."""


class OfflineError(FetchError):
    """The host could not be reached at all (no network, DNS failure, refused)."""


class OutputError(CoverageError):
    """An output could not be written."""
