"""Exceptions of zones-blanches.

Every error the tool raises on purpose derives from :class:`CoverageError`. Input problems
carry one :class:`Problem` per bad cell so the CLI and the app can print one clear line each
(file, row, column, what was expected) instead of a traceback.
"""

from __future__ import annotations

import errno
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
    "FolderBusyError",
    "InputError",
    "MissingCRSError",
    "MissingColumnError",
    "NetworkCoverageError",
    "NetworkError",
    "NotFoundError",
    "OfflineError",
    "OutOfTerritoryError",
    "OutputError",
    "Problem",
    "UnknownCodeError",
    "UnsupportedFormatError",
    "os_error_cause",
    "os_error_sentence",
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
        """Return the one-line French message: fichier, ligne, colonne, attendu, trouvé."""
        where = self.file
        if self.row is not None:
            where += f", ligne {self.row}"
        if self.column is not None:
            where += f", colonne « {self.column} »"
        text = f"{where} : attendu {self.expected}"
        if self.found is not None:
            text += f", trouvé « {self.found} »"
        return text

    def french(self) -> str:
        """Return the one-line French message (the same as ``str(problem)``)."""
        return str(self)


class InputError(CoverageError, ValueError):
    """An input file is malformed. ``problems`` lists every bad row/column found."""

    def __init__(self, problems: Iterable[Problem] | Problem, message: str | None = None):
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        if message is None:
            message = "\n".join(str(p) for p in self.problems) or "entrée invalide"
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


class FolderBusyError(OutputError):
    """An output folder is locked by another run (its lock was not released in time)."""


class NetworkCoverageError(NetworkError):
    """Most of a run's communes fall off the road network (wrong or partial road file)."""


#: French cause of the system errors a user meets when reading or writing files.
_OS_CAUSES: dict[int, str] = {
    errno.ENOSPC: "disque plein",
    errno.EDQUOT: "quota disque dépassé",
    errno.EFBIG: "fichier trop grand pour le système (limite de taille de fichier)",
    errno.EROFS: "système de fichiers en lecture seule",
    errno.EACCES: "permission refusée",
    errno.EPERM: "opération non permise",
    errno.ENOENT: "fichier ou dossier introuvable",
    errno.EEXIST: "le chemin existe déjà",
    errno.ENOTDIR: "un élément du chemin n'est pas un dossier",
    errno.EISDIR: "c'est un dossier, pas un fichier",
    errno.ENAMETOOLONG: "nom de fichier trop long",
    errno.EMFILE: "trop de fichiers ouverts",
    errno.EIO: "erreur d'entrée-sortie du disque",
}


def os_error_cause(exc: OSError) -> str:
    """Return the cause of a system error in French (« disque plein »…).

    Parameters
    ----------
    exc
        Any :class:`OSError`; an unlisted ``errno`` gives the system's own text.
    """
    return _OS_CAUSES.get(exc.errno or 0, exc.strerror or type(exc).__name__)


def os_error_sentence(exc: OSError, path: object = None) -> str:
    """Return one French sentence naming the path of a system error and its cause.

    Parameters
    ----------
    exc
        Any :class:`OSError` (its ``filename`` and ``filename2`` when set).
    path
        The path to name when the error has none (a failed ``write`` names no file): the
        output folder of the command, say.

    Returns
    -------
    str
        E.g. « opération sur fichier impossible sur /data/out/tables/x.csv : disque plein ».
    """
    named = [p for p in (exc.filename, exc.filename2) if p is not None]
    paths = " → ".join(str(p) for p in named) if named else str(path or "")
    where = f" sur {paths}" if paths else ""
    return f"opération sur fichier impossible{where} : {os_error_cause(exc)}"
