"""`hydra.sweeper.*` of `hydra/sweeper=optuna` (the schema is
`lossbench.config.plugins.OptunaSweeperConf`), normalised and checked before any trial."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KEY = "hydra.sweeper"
DIRECTIONS = ("maximize", "minimize")
PRUNERS = ("none", "median", "hyperband")

Problem = tuple[str, str, Any]


def _listed(value: Any) -> list[Any] | None:
    """A value given as one item or a list (an OmegaConf ListConfig too); None stays None."""
    if value is None:
        return None
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


@dataclass
class Options:
    """The sweeper's options.

    `objective` and `direction` are one name each, or lists of the same length (a
    multi-objective search); a direction left null is each objective's own (minimize for
    losses, MSEs, ECE and the Brier score, maximize for the rest).
    """

    objective: Any = None
    direction: Any = None
    n_trials: int = 20
    seeds: int = 1
    n_jobs: int = 1
    max_failure_rate: float = 0.0
    study_name: str | None = None
    storage: str | None = None
    sampler: Any = None
    pruner: str = "none"
    custom_search_space: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def objectives(self) -> list[str]:
        return [str(o) for o in _listed(self.objective) or []]

    @property
    def directions(self) -> list[str]:
        """One direction per objective."""
        from lossbench.run.metrics import lower_is_better

        if self.direction is None:
            return ["minimize" if lower_is_better(o) else "maximize" for o in self.objectives]
        if isinstance(self.direction, str):  # one direction for every objective
            return [self.direction] * max(len(self.objectives), 1)
        return [str(d) for d in _listed(self.direction) or []]

    def problems(self) -> list[Problem]:
        """Out-of-range options, as (key, expected, received)."""
        found: list[Problem] = []
        for name in ("n_trials", "seeds", "n_jobs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                found.append((f"{KEY}.{name}", "an integer >= 1", value))
        rate = self.max_failure_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            found.append((f"{KEY}.max_failure_rate", "a number in [0, 1]", rate))
        objectives = self.objectives
        if not objectives or len(set(objectives)) != len(objectives):
            expected = "the validation metric to optimise (minority_recall...), or a list of them"
            found.append((f"{KEY}.objective", expected, self.objective))
        directions = self.directions
        if any(d not in DIRECTIONS for d in directions):
            found.append(
                (
                    f"{KEY}.direction",
                    f"{' or '.join(DIRECTIONS)}, or a list of them",
                    self.direction,
                )
            )
        elif objectives and len(directions) != len(objectives):
            found.append(
                (
                    f"{KEY}.direction",
                    f"one direction per objective ({len(objectives)})",
                    self.direction,
                )
            )
        if self.pruner not in PRUNERS:
            found.append((f"{KEY}.pruner", f"one of {', '.join(PRUNERS)}", self.pruner))
        elif self.pruner != "none" and len(objectives) > 1:
            found.append(
                (
                    f"{KEY}.pruner",
                    "none with several objectives (Optuna prunes single-objective studies only)",
                    self.pruner,
                )
            )
        return found
