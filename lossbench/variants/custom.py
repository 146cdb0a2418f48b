"""The custom variant: a user's own loss, `loss.target=file.py:Name`, trained like any other.

Only this variant imports a target, and only when the run builds its loss: validation checks the
target's spelling and that its file or module exists without running it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lossbench.config.schema import DataConfig, LossConfig, Problem, Task
from lossbench.user_code import target_problems
from lossbench.variants.registry import BuildContext, register_variant

# The tasks whose tensor layout a user's loss can rely on (README, "Check and train your own
# loss"): binary probabilities, multiclass logits, grouped regression.
CUSTOM_TASKS = (Task.binary, Task.multiclass, Task.grouped)


@register_variant(
    "custom",
    description="Your own loss: loss.target=file.py:Name (a keras Loss or a function), loss.task.",
)
@dataclass
class CustomConfig(LossConfig):
    target: str = ""  # path/to/file.py:Name or package.module:Name
    # Required: the tensor layout the loss is written for (no default could be right).
    task: Task | None = None
    # Keyword arguments of the loss's constructor (or function), e.g. {gamma: 2}.
    params: dict[str, Any] = field(default_factory=dict)

    def training_task(self) -> Task:
        return self.task or Task.binary  # only read once `check` has required a task

    def check(self, data: DataConfig) -> Iterator[Problem]:
        if not self.target:
            yield "target", "path/to/file.py:Name or package.module:Name", self.target
        else:
            yield from target_problems("target", self.target)
        if self.task not in CUSTOM_TASKS:
            tasks = ", ".join(t.value for t in CUSTOM_TASKS)
            yield (
                "task",
                f"the task the loss is written for: one of {tasks}",
                (self.task.value if self.task else None),
            )

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses.user import build_user_loss

        return build_user_loss(self.target, self.params, ctx.prefix)
