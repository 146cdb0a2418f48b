"""The path one `lossbench` command takes through lossbench's modules, for docs/architecture.md
and the refactors that shorten it: `python -m tests.module_walk loss=focal trainer.progress=false`.

The CLI runs in this process under a profiler. A call into a lossbench module none of whose
frames is on the stack starts a visit of that module, which lasts until its last frame returns.
A visit during which the module calls another lossbench module is a step of the path (a call
into a leaf helper, such as a bound or a schema's method, is not); a module with a second step
after its first ended is re-entered. Steps taken while the trainer's epoch loop
(`lossbench.trainer.loop`) or the program-form probe (`lossbench.trainer.programs`, which times
each candidate form over several calls) runs repeat by design and are counted apart. A call into
a module that is on the stack below the top is a call back up. Importing a module (its body
running, class bodies included) counts as neither.
"""

from __future__ import annotations

import collections
import inspect
import sys
from typing import Any

PREFIXES = ("lossbench", "hydra_plugins.lossbench")
LOOPS = ("lossbench.trainer.loop", "lossbench.trainer.programs")


class Walk:
    """The path's steps in order, re-entries and calls back up."""

    def __init__(self) -> None:
        self.stack: list[tuple[str, Any]] = []
        self.visits: list[list[Any]] = []  # [module, called another module?, in a loop?]
        self.open: dict[str, list[Any]] = {}
        self.callbacks: collections.Counter[str] = collections.Counter()

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event == "return":
            if self.stack and self.stack[-1][1] is frame:
                module, _ = self.stack.pop()
                if all(m != module for m, _ in self.stack):
                    del self.open[module]
            return
        name = frame.f_globals.get("__name__", "")
        if event != "call" or not name.startswith(PREFIXES):
            return
        if not frame.f_code.co_flags & inspect.CO_OPTIMIZED:  # a module's or a class's body
            return
        if self.stack and self.stack[-1][0] != name:
            self.open[self.stack[-1][0]][1] = True  # the caller's visit goes on down
        if name not in self.open:
            self.open[name] = [name, False, any(loop in self.open for loop in LOOPS)]
            self.visits.append(self.open[name])
        elif self.stack[-1][0] != name:
            self.callbacks[name] += 1
        self.stack.append((name, frame))

    def lines(self) -> list[str]:
        def short(module: str) -> str:
            return module.removeprefix("lossbench.")

        def again(steps: list[str]) -> str:
            counts = collections.Counter(steps)
            more = {m: n - 1 for m, n in sorted(counts.items()) if n > 1}
            named = ", ".join(f"{short(k)} x{v}" for k, v in more.items())
            return f"{sum(more.values())} times in {len(more)} modules: {named or 'none'}"

        steps = [module for module, down, _ in self.visits if down]
        outside = [module for module, down, looping in self.visits if down and not looping]
        backs = ", ".join(f"{short(k)} x{v}" for k, v in sorted(self.callbacks.items()))
        walk = [short(m) for i, m in enumerate(outside) if i == 0 or outside[i - 1] != m]
        return [
            f"modules on the path: {len(set(steps))}; steps: {len(steps)}",
            "path outside the loops: " + " > ".join(walk),
            f"re-entered after being left, outside the loops: {again(outside)}",
            f"re-entered after being left, everywhere: {again(steps)}",
            f"calls back up into a module on the stack: {backs or 'none'}",
        ]


def main(argv: list[str]) -> None:
    import lossbench.process

    # The CLI ends the process without teardown once a framework is loaded: exit normally here,
    # so that the walk is printed.
    lossbench.process.exit_now = sys.exit  # type: ignore[assignment]
    walk = Walk()
    sys.argv = ["lossbench", *argv]
    sys.setprofile(walk)
    try:
        from lossbench.cli import main as lossbench

        lossbench()
    except SystemExit:
        pass
    finally:
        sys.setprofile(None)
    print("\n".join(walk.lines()), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
