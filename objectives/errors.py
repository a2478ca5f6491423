"""Errors a user can fix (bad names, files, data); the CLI prints them as one clear line."""

from __future__ import annotations


class ObjectiveInputError(ValueError):
    """A mistake in what the user gave (network, weights, data, assignment); the message says what to fix."""


class CheckpointError(ObjectiveInputError):
    """A weights file that cannot be loaded safely or does not fit the architecture."""


class AssignmentError(ObjectiveInputError):
    """A layer-to-multiplier assignment naming unknown layers or unusable multipliers."""


class DataError(ObjectiveInputError):
    """A data set that is missing, malformed or does not fit the network."""
