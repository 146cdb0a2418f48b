"""Parallel sweeps on one machine: `hydra/launcher=lossbench`.

Each worker is a forked process that imports its Keras backend once, as soon as it starts, and
then runs jobs one after another, keeping its compiled trainer between jobs that differ only in
the seed (as the basic launcher does in its one process). The parent never imports a framework:
it composes each job (while the workers run the ones before it), hands it to the next idle
worker and collects what Hydra's `run_job` returns. Started early by the CLI (`prestart`), the
workers import TensorFlow or JAX while the parent is still composing the sweep.

Workers run in their own process group, so a terminal's Ctrl-C reaches only the parent, which
passes each signal on to the workers that are running a job: the first one stops them
gracefully (tables through the last step), a second one ends them at once, as for a single run.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lossbench.errors import ConfigError, LossbenchError
from lossbench.process import framework_loaded

TARGET = "hydra_plugins.lossbench_launcher.PoolLauncher"


@dataclass
class PoolLauncherConf:
    """`hydra/launcher=lossbench`: its options, as `hydra.launcher.<key>=...`."""

    _target_: str = TARGET
    n_jobs: int = 0  # worker processes; 0: one per two usable cores (at least one)
    threads: int = 0  # framework threads per worker; 0: usable cores / n_jobs (at least 1)
    # JAX jobs that differ only in their seed train together, up to this many in one compiled
    # program (`lossbench.trainer.jax_lanes`); 1: every job on its own.
    vectorize: int = 1


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pool_size(launcher: Any, jobs: int | None = None, fit: int | None = None) -> tuple[int, int]:
    """Workers and threads per worker for a `hydra.launcher` node of this launcher.

    Never more workers than `jobs`; the default count also stays within `fit` (the workers the
    memory budget holds; an explicit count above it is refused when the sweep is planned).

    Raises:
        ConfigError: naming `hydra.launcher.n_jobs` or `hydra.launcher.threads`.
    """
    cores = usable_cores()
    sizes = {key: _option(launcher, key) for key in ("n_jobs", "threads")}
    # One worker per two cores by default: a small model's step already keeps about two cores
    # busy, so more workers add start-up (import, compile) without adding throughput.
    n_jobs = sizes["n_jobs"] or min(max(1, cores // 2), fit or cores)
    n_jobs = min(n_jobs, jobs or n_jobs)
    return n_jobs, sizes["threads"] or max(1, cores // n_jobs)


def _option(launcher: Any, key: str) -> int:
    """A launcher option's integer value; `vectorize` counts from 1, the others from 0 (the
    default size).

    Raises:
        ConfigError: naming `hydra.launcher.<key>`.
    """
    low = 1 if key == "vectorize" else 0
    value = launcher.get(key, low)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 1024:
        raise ConfigError(f"hydra.launcher.{key}", f"an integer in [{low}, 1024]", value)
    return value


def override_key(override: str) -> str:
    """The key (or config group) an override sets: `+seed=3` and `seed=3` both set `seed`."""
    return override.lstrip("+~").partition("=")[0]


def seed_free(overrides: Sequence[str]) -> tuple[str, ...]:
    """A job's overrides without its seed: jobs with the same ones differ only in the seed."""
    return tuple(o for o in overrides if override_key(o) != "seed")


def job_units(
    overrides: Sequence[Sequence[str]], backends: Sequence[str], launcher: Any
) -> list[list[int]]:
    """The sweep's jobs in the units a worker runs at once, in order of each unit's first job:
    with `hydra.launcher.vectorize` V > 1, JAX jobs that differ only in their seed go together,
    up to V per unit; every other job alone.

    Raises:
        ConfigError: a bad `vectorize`, or V > 1 for a sweep without JAX jobs (it would be
            silently ignored).
    """
    size = _option(launcher, "vectorize")
    if size > 1 and "jax" not in backends:
        raise ConfigError(
            "hydra.launcher.vectorize",
            "1 for a sweep without backend=jax jobs (seeds train together only on JAX)",
            size,
        )
    units: list[list[int]] = []
    open_units: dict[tuple[str, ...], list[int]] = {}
    for job, (job_overrides, backend) in enumerate(zip(overrides, backends, strict=True)):
        together = size > 1 and backend == "jax"
        key = seed_free(job_overrides)
        unit = open_units.get(key) if together else None
        if unit is None or len(unit) >= size:
            unit = []
            units.append(unit)
            if together:
                open_units[key] = unit
        unit.append(job)
    return units


def thread_environment(threads: int) -> dict[str, str]:
    """Environment variables that size TensorFlow's and OpenMP's thread pools to `threads`.

    XLA's own switch to one thread (`--xla_cpu_multi_thread_eigen=false`) is not used: it
    changes which matrix-multiply kernel runs, and with it the last bits of the tables.
    """
    return {
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
    }


# JAX and TensorFlow each claim most of a GPU's memory when they start; several workers on one
# GPU must allocate as they go instead (the forked workers inherit these; a user's value wins).
SHARED_DEVICE = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}


def core_slots(n_jobs: int, threads: int) -> list[set[int] | None]:
    """The cores each worker is pinned to: disjoint sets of `threads` cores when they fit, so
    that JAX, which sizes its pool from the cores it may use, gets `threads` too; else None
    (no pinning)."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return [None] * n_jobs
    if n_jobs * threads > len(cores):
        return [None] * n_jobs
    return [set(cores[i * threads : (i + 1) * threads]) for i in range(n_jobs)]


def _die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (a graceful stop)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _worker(
    conn: multiprocessing.connection.Connection, threads: int, cores: set[int] | None, backend: str
) -> None:
    """A worker process's life: import the backend, then run jobs until told to stop."""
    from lossbench import console
    from lossbench.signals import Interrupted

    os.setpgrp()  # the parent decides which signals reach a running job
    _die_with_parent()
    os.environ.update(thread_environment(threads))
    if cores is not None:
        os.sched_setaffinity(0, cores)
    console.PROGRESS_BARS = False  # several workers share one terminal
    code = 0
    try:
        if backend:
            _warm_up(backend)
        while (message := conn.recv()) is not None:
            conn.send(_run_unit(*message))
    except Interrupted as stop:  # signalled while idle: nothing of a job to keep
        code = stop.exit_code
    except (EOFError, BrokenPipeError, KeyboardInterrupt):  # the parent has gone
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)  # a forked child: never the parent's exit handlers


def _warm_up(backend: str) -> None:
    """Import the backend now, while the parent composes; a failure is left to the job."""
    from lossbench.experiment import select_backend

    with contextlib.suppress(Exception):
        select_backend(backend)


def _run_unit(context: bytes, task: str, configs: list[DictConfig]) -> tuple[str, Any]:
    """Run a unit of jobs (see `job_units`); return what happened, picklable: ("done", each
    job's `JobReturn`) or ("interrupted", (signal, reported))."""
    from hydra.core.utils import setup_globals

    from lossbench.signals import Interrupted

    setup_globals()
    hydra_context = pickle.loads(context)
    try:
        if len(configs) == 1:
            module, _, name = task.partition(":")
            function = getattr(importlib.import_module(module), name)
            function = getattr(function, "__wrapped__", function)  # the task under @hydra.main
            rets = [_hydra_job(hydra_context, function, configs[0])]
        else:
            rets = _run_together(hydra_context, configs)
    except Interrupted as stop:
        return "interrupted", (stop.signum, stop.reported)
    for ret in rets:
        try:
            pickle.dumps(ret._return_value)
        except Exception:  # an exception that cannot travel: keep its one-line message
            from lossbench.errors import one_line

            ret._return_value = LossbenchError(one_line(ret._return_value))
    return "done", rets


def _hydra_job(
    hydra_context: Any, function: Callable[[DictConfig], Any], config: DictConfig
) -> Any:
    """One job as Hydra's basic launcher runs it: its folder, .hydra files, logging, and
    `function` called with its config."""
    from hydra.core.utils import run_job

    return run_job(
        hydra_context=hydra_context,
        task_function=function,
        config=config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


def _run_together(hydra_context: Any, configs: list[DictConfig]) -> list[Any]:
    """Jobs that differ only in their seed, trained as lanes of one program: each is set up by
    Hydra as its own job (folder, .hydra files, a resumed job's finished result kept), then
    they train together and each job's outcome goes into its `JobReturn`."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import JobStatus

    from lossbench import cli
    from lossbench.runs import run_experiments
    from lossbench.signals import Interrupted

    jobs: list[tuple[int, DictConfig, Path, Any]] = []  # those that train, by index in `done`
    done: list[Any] = []  # each job's JobReturn

    def start(cfg: DictConfig) -> float:
        out_dir = Path(HydraConfig.get().runtime.output_dir)
        try:
            typed = cli.start_job(cfg, out_dir, multirun=True)
        except Exception as error:
            return cli.job_failed(error, cfg, out_dir, multirun=True)
        if isinstance(typed, float):
            return typed
        jobs.append((len(done), cfg, out_dir, typed))
        return float("nan")  # until it has trained

    for config in configs:
        done.append(_hydra_job(hydra_context, start, config))
    try:
        outcomes = run_experiments(
            [typed for *_, typed in jobs], [out_dir for _, _, out_dir, _ in jobs], vectorize=True
        )
    except Interrupted as stop:
        cli.report_interrupted(stop, [out_dir for _, _, out_dir, _ in jobs])
        raise
    for (index, cfg, out_dir, _), outcome in zip(jobs, outcomes, strict=True):
        ret = done[index]
        try:
            if isinstance(outcome, Exception):
                ret.return_value = cli.job_failed(outcome, cfg, out_dir, multirun=True)
            else:
                ret.return_value = cli.job_finished(outcome, out_dir, multirun=True)
        except Exception as error:  # debug=true re-raises: the job fails as in Hydra's run_job
            ret.return_value, ret.status = error, JobStatus.FAILED
    return done


class _Worker:
    def __init__(self, threads: int, cores: set[int] | None, backend: str) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        args = (child, threads, cores, backend)
        self.process = context.Process(target=_worker, args=args, daemon=True)
        self.process.start()
        child.close()
        self.threads, self.cores, self.backend = threads, cores, backend
        self.job: list[int] | None = None  # the unit of jobs it runs now

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.conn.close()


class Pool:
    """Worker processes, each bound to one Keras backend once it has run a job."""

    def __init__(self, n_jobs: int, threads: int, backend: str = "") -> None:
        self.meanwhile: Callable[[], None] | None = None  # see `run`
        if framework_loaded():
            # Forking a process whose framework already runs threads can deadlock the child.
            raise RuntimeError("the worker pool must start before any framework is imported")
        if n_jobs > 1:  # workers share the accelerator: each takes memory as it needs it
            os.environ.update({k: v for k, v in SHARED_DEVICE.items() if k not in os.environ})
        slots = core_slots(n_jobs, threads)
        self.workers = [_Worker(threads, cores, backend) for cores in slots]

    def run(
        self,
        context: Any,
        task: str,
        configs: Sequence[DictConfig],
        backends: Sequence[str],
        units: list[list[int]] | None = None,
    ) -> list[Any]:
        """Run every job; returns each job's Hydra `JobReturn`, in order. `backends` are the
        jobs' backends; `units` the jobs a worker runs at once (see `job_units`; default: one by
        one). `self.meanwhile` is called once the first jobs are handed out (this process is
        idle until they end). While workers run, the next unit's configs are read from
        `configs` (a `LazyConfigs` composes them then, instead of all before the first job).

        Raises:
            Interrupted: after the running jobs have stopped and written their tables.
        """
        from lossbench.signals import Interrupted

        packed = pickle.dumps(context)
        pending = units if units is not None else [[job] for job in range(len(configs))]
        pending = list(pending)
        results: list[Any] = [None] * len(configs)
        try:
            while pending or self._busy():
                for worker in self._idle():
                    unit = self._next_for(worker, pending, backends)
                    if unit is None:
                        break
                    worker = self._bound(worker, backends[unit[0]])
                    worker.job = unit
                    worker.conn.send((packed, task, [configs[job] for job in unit]))
                if self.meanwhile is not None:
                    later, self.meanwhile = self.meanwhile, None
                    later()
                # The first pending unit's configs, composed while the workers run (the next
                # worker to finish usually takes it; see `_next_for`).
                for job in pending[0] if pending else []:
                    configs[job]
                self._collect(results, configs, replace=bool(pending))
        except Interrupted as stop:
            self._drain(stop.signum, results, configs)
            raise
        return results

    def _busy(self) -> list[_Worker]:
        return [w for w in self.workers if w.job is not None]

    def _idle(self) -> list[_Worker]:
        return [w for w in self.workers if w.job is None]

    @staticmethod
    def _next_for(
        worker: _Worker, pending: list[list[int]], backends: Sequence[str]
    ) -> list[int] | None:
        """The next unit of jobs, preferring one on the backend the worker already runs."""
        if not pending:
            return None
        same = [u for u in pending if backends[u[0]] == worker.backend]
        unit = same[0] if same else pending[0]
        pending.remove(unit)
        return unit

    def _bound(self, worker: _Worker, backend: str) -> _Worker:
        """A worker for `backend`: `worker`, or its replacement when it runs another backend
        (Keras picks its backend once per process)."""
        backend = str(backend)
        if worker.backend in ("", backend):
            worker.backend = backend
            return worker
        worker.stop()
        fresh = _Worker(worker.threads, worker.cores, backend)
        self.workers[self.workers.index(worker)] = fresh
        return fresh

    def _collect(
        self, results: list[Any], configs: Sequence[DictConfig], replace: bool = False
    ) -> None:
        """Wait for at least one running job to end and record its outcome; a worker that died
        is replaced when `replace` (jobs are waiting), else dropped."""
        from lossbench.signals import Interrupted

        busy = {w.conn: w for w in self._busy()}
        for conn in multiprocessing.connection.wait(list(busy)):
            worker = busy[conn]  # type: ignore[index]
            unit = worker.job
            assert unit is not None
            try:
                kind, value = worker.conn.recv()
            except (EOFError, OSError):
                for job in unit:
                    results[job] = _lost(configs[job], worker.process)
                self._drop(worker, replace)
                continue
            worker.job = None
            if kind == "interrupted":
                signum, reported = value
                stop = Interrupted(signum)
                stop.reported = reported
                raise stop
            for job, ret in zip(unit, value, strict=True):
                results[job] = ret

    def _drop(self, worker: _Worker, replace: bool) -> None:
        worker.conn.close()
        index = self.workers.index(worker)
        if replace:
            self.workers[index] = _Worker(worker.threads, worker.cores, worker.backend)
        else:
            del self.workers[index]

    def _drain(self, signum: int, results: list[Any], configs: Sequence[DictConfig]) -> None:
        """Pass the signal on to running jobs and wait until they have written their tables;
        a further signal is passed on too (and ends them at once)."""
        from lossbench.signals import Interrupted

        for worker in self._busy():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.process.pid, signum)  # type: ignore[arg-type]
        while self._busy():
            try:
                self._collect(results, configs)
            except Interrupted as again:
                if not again.reported:  # a new signal to this process, not a job's report
                    for worker in self._busy():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(worker.process.pid, again.signum)  # type: ignore[arg-type]

    def close(self) -> None:
        """Let every worker finish and exit."""
        for worker in self.workers:
            worker.stop()
        for worker in self.workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
        self.workers = []


class LazyConfigs(Sequence[DictConfig]):
    """The jobs' Hydra configs, each composed by `compose(job)` when first read and kept: a
    sweep's first job starts without waiting for every job's composition (about 0.1 s each)."""

    def __init__(self, compose: Callable[[int], DictConfig], n_jobs: int) -> None:
        self._compose = compose
        self._n_jobs = n_jobs
        self._composed: dict[int, DictConfig] = {}

    def __len__(self) -> int:
        return self._n_jobs

    def __getitem__(self, job: int) -> DictConfig:  # type: ignore[override]  # no slices
        if not 0 <= job < self._n_jobs:
            raise IndexError(job)
        if job not in self._composed:
            self._composed[job] = self._compose(job)
        return self._composed[job]


class WorkerLost(LossbenchError):
    """A job's worker process ended before the job did (killed, out of memory)."""


def _lost(config: DictConfig, process: Any) -> Any:
    """The result of a job whose worker died: its folder says so, and the sweep goes on."""
    from hydra.core.utils import JobReturn, JobStatus

    from lossbench.tables import write_error_summary

    process.join(timeout=5)
    out = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
    lost = WorkerLost(
        f"its worker process ended (exit status {process.exitcode}) before the job finished"
    )
    write_error_summary(out, lost, config)
    ret = JobReturn()
    ret.status = JobStatus.COMPLETED  # the sweep reports it from the folder, like other errors
    ret.return_value = float("nan")
    return ret


_STARTED: Pool | None = None


def prestart(
    n_jobs: int, threads: int, backend: str, meanwhile: Callable[[], None] | None = None
) -> None:
    """Start the workers now, before Hydra composes the sweep (the launcher takes them over);
    `meanwhile` is what this process does while they run the jobs."""
    global _STARTED
    _STARTED = Pool(n_jobs, threads, backend)
    _STARTED.meanwhile = meanwhile


def take(launcher: Any, backend: str, jobs: int) -> Pool:
    """The pool started by `prestart`, else a new one for `jobs` jobs."""
    global _STARTED
    pool, _STARTED = _STARTED, None
    if pool is None:
        n_jobs, threads = pool_size(launcher, jobs)
        pool = Pool(n_jobs, threads, backend)
    return pool


def shutdown() -> None:
    """Stop a prestarted pool that no launcher took (the sweep never started)."""
    global _STARTED
    if _STARTED is not None:
        _STARTED.close()
        _STARTED = None
