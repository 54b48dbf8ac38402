"""Errors a user can fix. The CLI maps each to a one-line message and exit code 2."""

from __future__ import annotations


class RecsecError(Exception):
    """Base of every error caused by user input (files, grids, options), not by a bug."""


class GridError(RecsecError):
    """A grid file is unreadable or invalid; the message names the file and the key path."""


class DataError(RecsecError):
    """A dataset file is missing or malformed; the message names the file and what was expected."""


class ResourceError(RecsecError):
    """The cluster can never satisfy what a grid asks for (e.g. a GPU on a CPU-only cluster)."""
