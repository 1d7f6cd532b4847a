"""Errors caused by what the user asked for.

The CLI prints a `UserError` as one readable paragraph and exits with status 2; anything else is a
bug and keeps its traceback.
"""


class UserError(Exception):
    """A bad config value, a missing file or missing data: the user can fix it."""


class ConfigError(UserError):
    """A config value that is unknown, of the wrong type or out of range."""


class DataUnavailableError(UserError):
    """A dataset that is neither prepared locally nor downloadable right now."""


def unknown_choice(what: str, value: object, choices: list[str]) -> ConfigError:
    """The error for a name that is not one of `choices`."""
    return ConfigError(
        f"Unknown {what} {value!r}. Valid choices: {', '.join(sorted(choices))}."
    )
