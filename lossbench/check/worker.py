"""One backend's share of `lossbench-check`: `python -P -m lossbench.check.worker SPEC OUT` with
KERAS_BACKEND set; writes one JSON object to OUT (results and the values for the backends
check), whatever the loss prints."""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any

from lossbench.errors import LossbenchError

# Numerical guards act only at extreme inputs, by design; their effect is not checked.
GUARDS = ("epsilon", "eps")


def is_guard(name: str) -> bool:
    """A parameter named as a numerical guard (`epsilon`, `eps`, `..._epsilon`)."""
    return name in GUARDS or name.endswith("_epsilon")


def tunable(params: dict[str, Any], given: set[str]) -> list[str]:
    """Numeric parameters whose effect is checked: every float, and ints given explicitly;
    guards among them too (the check tells a guard from a coefficient by what it does)."""
    out = []
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if isinstance(value, float) or name in given:
            out.append(name)
    return out


def user_subject(target: str, task: str, params: dict[str, Any]) -> Any:
    """The subject of a user's loss: built from its target with `params`."""
    from lossbench.check.subject import Subject
    from lossbench.losses.user import UserLoss
    from lossbench.user_code import extras_of, instantiate, load_target, parameters

    obj = load_target(target, "TARGET")
    extras = extras_of(obj)
    defaults = {k: v for k, v in parameters(obj).items() if v is not inspect.Parameter.empty}
    merged = {**defaults, **params}
    instantiate(obj, merged, "--param")  # bad parameters are bad input, before any check
    return Subject(
        task=task,
        make=lambda p: instantiate(obj, p, "--param"),
        params=merged,
        adapt=lambda loss: UserLoss(loss, extras=extras),
        tunable=[n for n in tunable(merged, set(params)) if not is_guard(n)],
        guards=[n for n in tunable(merged, set(params)) if is_guard(n)],
    )


def main() -> None:
    """`python -P -m lossbench.check.worker SPEC OUT`: the results go to the file OUT."""
    import os
    from pathlib import Path

    spec, out = json.loads(sys.argv[1]), Path(sys.argv[2])
    # Started with -P: the working folder comes last, for `package.module` targets, so that its
    # modules cannot shadow the standard library or lossbench.
    sys.path.append(os.getcwd())
    try:
        from lossbench.check.suite import Checker

        checker = Checker(user_subject(spec["target"], spec["task"], spec["params"]))
    except LossbenchError as error:
        out.write_text(json.dumps({"error": str(error)}))
        return
    results = checker.results()
    try:
        fingerprint = checker.fingerprint()
    except Exception:
        fingerprint = None
    out.write_text(
        json.dumps({"results": [r.__dict__ for r in results], "fingerprint": fingerprint})
    )


if __name__ == "__main__":
    from lossbench.process import exit_now, use_private_tempdir

    use_private_tempdir()
    main()
    exit_now(0)
