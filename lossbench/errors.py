"""Errors that lossbench reports to users as one line, without a traceback."""

from __future__ import annotations

from typing import Any

# Exit statuses: 0 ok; 1 a sweep with jobs that did not finish; 2 bad input or an error;
# 3 a single run that diverged; 128 + signal number when interrupted (130 SIGINT, 143 SIGTERM).
EXIT_SWEEP_INCOMPLETE = 1
EXIT_ERROR = 2
EXIT_DIVERGED = 3


def signal_exit_code(signum: int) -> int:
    """The exit status of a process ended by signal `signum`, as shells report it."""
    return 128 + signum


class LossbenchError(Exception):
    """An error whose message is complete for the user: the CLI prints it as one line."""

    # TensorFlow's autograph re-raises an error with this attribute as it is, instead of as a
    # StagingError carrying the generated code's stack.
    ag_pass_through = True


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

    def with_hint(self, hint: str) -> ConfigError:
        """The same error with `hint` (`; did you mean ...?`) after the value received."""
        self.args = (f"{self.args[0]}{hint}",)
        return self


def one_line(error: BaseException) -> str:
    """A one-line message for any error Hydra, OmegaConf or lossbench raises."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(error, SweepJobError):
        return f"{one_line(error.cause)} (in sweep job: {' '.join(error.job)})"
    if isinstance(error, LossbenchError):
        return str(error)
    if isinstance(error, MissingConfigException) and error.options is not None:
        group = (error.missing_cfg_file or "").split("/")[0] or "config"
        wanted = (error.missing_cfg_file or "").split("/")[-1]
        return (
            f"invalid value for `{group}`: expected one of {', '.join(error.options)}, "
            f"received {wanted!r}"
        )
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.filename}: {error.strerror}"  # a full disk, a folder that is not one
    cause = error if isinstance(error, OmegaConfBaseException) else error.__cause__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        msg = str(getattr(cause, "msg", "") or cause).splitlines()[0]
        return f"invalid value for `{cause.full_key}`: {msg}{_closest_key(cause)}"
    return f"{type(error).__name__}: {brief(error)}"


def brief(error: BaseException, limit: int = 300) -> str:
    """An error's message on one line, without a framework's dump: TensorFlow's stack of the
    node that failed, its `{{function_node ...}}` prefix and `[Op:...]` suffix."""
    import re

    lines = str(error).splitlines()
    if lines and lines[0].startswith("Graph execution error"):
        # The message is the unindented text after the stack of frames (indented).
        lines = [
            line
            for line in lines[1:]
            if line.strip() and not line[0].isspace() and not line.startswith("Detected at node")
        ]
    text = " ".join(" ".join(lines).split())
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text)
    text = re.sub(r"\s*\[\[.*$", "", text)
    if not text:
        return "no message"
    return text[:limit] + ("..." if len(text) > limit else "")


class SweepJobError(LossbenchError):
    """A sweep job that cannot run, found before the sweep starts."""

    def __init__(self, job: list[str], cause: BaseException) -> None:
        self.job, self.cause = job, cause
        super().__init__(f"sweep job {' '.join(job)}: {cause}")


class SweepIncomplete(LossbenchError):
    """A sweep ran, and some of its jobs did not finish (their folders say why)."""

    exit_code = EXIT_SWEEP_INCOMPLETE


def did_you_mean(word: str, options: Any, prefix: str = "") -> str:
    """`; did you mean `<prefix><closest>`?` for the option closest to `word`, or ""."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1)
    return f"; did you mean `{prefix}{close[0]}`?" if close else ""


def _closest_key(error: Any) -> str:
    """For a key the schema lacks: the closest valid key and every valid key of its group."""
    import dataclasses

    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    schema = getattr(error, "object_type", None)
    if not isinstance(error, ConfigAttributeError | ConfigKeyError):
        return ""
    if not (isinstance(schema, type) and dataclasses.is_dataclass(schema)):
        return ""
    group, _, key = str(error.full_key).rpartition(".")
    valid = [f.name for f in dataclasses.fields(schema)]
    if key in valid:
        return ""
    readers = _options_reading(schema, key)
    if readers and group:
        hint = f"; it is read with {' or '.join(f'{group}={r}' for r in readers)}"
    else:
        hint = did_you_mean(key, valid, f"{group}." if group else "")
    return f"{hint} (the keys of `{group or 'the config'}`: {', '.join(valid)})"


def _options_reading(schema: type, key: str) -> list[str]:
    """The other options of a config group whose schema has `key`: the group's schemas are the
    subclasses of one base (a data source's, a model source's, a loss variant's), each option
    named by the `source` default or the `variant` its class declares itself."""
    import dataclasses

    base = next(c for c in reversed(schema.__mro__) if dataclasses.is_dataclass(c))
    options, todo = set(), list(base.__subclasses__())
    while todo:
        cls = todo.pop(0)
        todo += cls.__subclasses__()
        fields = {f.name: f for f in dataclasses.fields(cls)}
        own = vars(cls).get("variant") or (
            fields["source"].default if "source" in vars(cls).get("__annotations__", {}) else None
        )
        if key in fields and own and cls is not schema:
            options.add(str(getattr(own, "value", own)))
    return sorted(options)
