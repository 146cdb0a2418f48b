"""`make test-stress`: the tests marked `timing` (signals, locks, resume, concurrent folders),
repeated while processes burn the CPU, as on a busy shared machine. Exit status: the first
failing round's, else 0.

    python -m tests.stress [--rounds 5] [--burners 2] [PYTEST_ARGS ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--burners", type=int, default=2)
    options, pytest_args = parser.parse_known_args()
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(options.burners)
    ]
    try:
        for round_ in range(1, options.rounds + 1):
            began = time.monotonic()
            code = subprocess.call(
                [sys.executable, "-m", "pytest", "-q", "-m", "timing", *pytest_args]
            )
            took = time.monotonic() - began
            print(f"test-stress: round {round_} of {options.rounds}: exit {code} in {took:.0f} s "
                  f"beside {options.burners} CPU burners", flush=True)  # fmt: skip
            if code:
                return code
    finally:
        for burner in burners:
            burner.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
