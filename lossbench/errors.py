"""Errors that lossbench reports to users as one line, without a traceback."""

from __future__ import annotations

from typing import Any


class LossbenchError(Exception):
    """An error whose message is complete for the user: the CLI prints it as one line."""


class ConfigError(LossbenchError):
    """A config value is out of range or inconsistent with another.

    Args:
        key: the dotted config key, e.g. ``scale.epsilon``.
        expected: what the key accepts.
        received: the value given.
    """

    def __init__(self, key: str, expected: str, received: Any) -> None:
        self.key, self.expected, self.received = key, expected, received
        super().__init__(f"invalid value for `{key}`: expected {expected}, received {received!r}")
