"""A process that imports MLflow and opens its store while a run or sweep trains, then publishes
the folder when the run asks: the two seconds of MLflow's import and store set-up overlap the
training instead of following it (`make bench`'s tracking section measures it).

The run sends one JSON line on the worker's stdin (the folder, the experiment, the outcome) and
waits for it to finish; end of input without a line (the run was killed, or nothing ran) ends
the worker without publishing. The worker is in a session of its own and ignores SIGINT and
SIGTERM: Ctrl-C is the run's to handle, and the run still asks for its folder to be published.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any


class Worker:
    """The run's side of a worker process."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    @classmethod
    def start(cls, uri: str | None) -> Worker | None:
        """Start a worker for `tracker.uri` (None: it could not start; the run publishes
        in its own process instead)."""
        from lossbench.tracking.mlflow_runs import tracking_uri

        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "lossbench.tracking.worker", tracking_uri(uri)],
                stdin=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        except OSError:
            return None
        return cls(proc)

    def publish(self, folder: Path, experiment: str | None, outcome: tuple[str, str]) -> bool:
        """Ask the worker to publish `folder` and wait until it has; False when it could not
        be asked (it died: the caller publishes itself)."""
        request = {"folder": str(folder), "experiment": experiment, "outcome": list(outcome)}
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.close()
        except (OSError, ValueError):
            self.proc.wait()
            return False
        return self.proc.wait() == 0

    def dismiss(self) -> None:
        """End the worker without publishing anything."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


def serve(uri: str, requests: IO[str]) -> None:
    """Open the store at `uri`, then publish what the first line of `requests` asks for."""
    from lossbench.tracking import publish_mlflow, warn_on_failure
    from lossbench.tracking.mlflow_runs import open_client

    client: Any = None
    try:
        client = open_client(uri)
    except Exception as error:  # said once the run has asked (its output comes first)
        failure: Exception | None = error
    else:
        failure = None
    line = requests.readline()
    if not line:
        return
    request = json.loads(line)
    folder = Path(request["folder"])
    outcome = (str(request["outcome"][0]), str(request["outcome"][1]))

    def act() -> None:
        if failure is not None:
            raise failure
        publish_mlflow(folder, uri, request["experiment"], outcome, client)

    warn_on_failure("mlflow", folder, act)


if __name__ == "__main__":
    for handled in (signal.SIGINT, signal.SIGTERM):
        signal.signal(handled, signal.SIG_IGN)
    serve(sys.argv[1], sys.stdin)
    # Published and committed: MLflow's exit handlers (its background loggers) would only add a
    # second to the run's wait.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
