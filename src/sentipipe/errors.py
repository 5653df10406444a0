"""The one error type a user can cause; the CLI prints it without a traceback."""


class SentipipeError(Exception):
    """A problem the user can act on: bad params, bad data, a missing model."""


class ConfigError(SentipipeError):
    """params.yaml holds a key or value that is not allowed."""


class DataError(SentipipeError):
    """The corpus cannot be read or does not make a usable data set."""
