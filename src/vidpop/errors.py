"""Exceptions with messages meant for users (the CLI prints them as one line)."""


class VidpopError(Exception):
    """Base class: an error caused by input or environment, reported without a traceback."""


class DataNotFoundError(VidpopError):
    """A dataset folder or file that an adapter needs is missing."""


class DownloadUnavailableError(VidpopError):
    """A download from an official source failed (typically: no network)."""


class SchemaError(VidpopError):
    """A table does not follow vidpop's schema."""


class MissingBackboneError(VidpopError):
    """A pretrained backbone's weights are not installed."""


class NoLabelledDataError(VidpopError):
    """An evaluation needs labelled items of a kind that the data does not have."""


class MissingModelError(VidpopError):
    """A model bundle has no model for the question asked (e.g. no recommender); the API answers 409."""


class UnknownItemError(VidpopError):
    """An id (user, video) that the model does not know; the API answers 404."""
