"""The one exception type for problems a user can fix."""


class DataError(ValueError):
    """User-facing data problem; the message names the file/row/column and what to do."""
