"""The path one `lossbench` command takes through lossbench's modules, for docs/architecture.md
and the refactors that shorten it: `python -m tests.module_walk loss=focal trainer.progress=false`.

The CLI runs in this process under a profiler. A call into a lossbench module none of whose
frames is on the stack enters that module; entering it again after it was left is a re-entry;
a call into a module that is on the stack but not on top is a call back up (a callback).
Importing a module (its body running) counts as neither.
"""

from __future__ import annotations

import collections
import sys
from typing import Any

PREFIXES = ("lossbench", "hydra_plugins.lossbench")


class Walk:
    """The modules entered, in order, with re-entries and calls back up counted."""

    def __init__(self) -> None:
        self.stack: list[tuple[str, Any]] = []
        self.order: list[str] = []
        self.reentries: collections.Counter[str] = collections.Counter()
        self.callbacks: collections.Counter[str] = collections.Counter()

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event == "return":
            if self.stack and self.stack[-1][1] is frame:
                self.stack.pop()
            return
        name = frame.f_globals.get("__name__", "")
        if event != "call" or not name.startswith(PREFIXES) or frame.f_code.co_name == "<module>":
            return
        on_stack = [module for module, _ in self.stack]
        if name not in on_stack:
            if name in self.order:
                self.reentries[name] += 1
            self.order.append(name)
        elif on_stack[-1] != name:
            self.callbacks[name] += 1
        self.stack.append((name, frame))

    def lines(self) -> list[str]:
        def short(module: str) -> str:
            return module.removeprefix("lossbench.")

        first = list(dict.fromkeys(self.order))
        counts = ", ".join(f"{short(k)} x{v}" for k, v in sorted(self.reentries.items()))
        backs = ", ".join(f"{short(k)} x{v}" for k, v in sorted(self.callbacks.items()))
        return [
            f"modules entered: {len(first)}; entries: {len(self.order)}",
            "first entries: " + " > ".join(short(m) for m in first),
            f"re-entered after being left: {sum(self.reentries.values())} times, "
            f"{len(self.reentries)} modules: {counts or 'none'}",
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
