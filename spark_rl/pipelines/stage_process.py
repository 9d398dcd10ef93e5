"""Starting a demo stage's `spark-rl` process.

Every stage is its own process (a stage that crashes cannot leave actors behind in the next one).
Started as `python -m spark_rl.cli ...`, each first spends seconds importing torch, Ray,
transformers and spark_rl on its core before it does anything (measured: ~5 s of a stage's
pinned core). `ForkServer` pays that once: a fork server (Python's multiprocessing "forkserver")
imports those modules, then forks one child per stage; the child pins itself, points its stdout
and stderr at the stage log and runs the same `spark_rl.cli.main(argv)` the command line runs.
The fork server has started no thread pools (torch's and OpenMP's start on first use), so the
children size theirs from their own pinned cores. `datasets` is not preloaded: pyarrow starts a
thread at import, and a fork copies none of a process's threads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# what every stage's driver imports before it does anything (the heavy part of `spark-rl` start-up)
PRELOAD = ["torch", "ray", "numpy", "transformers", "tqdm", "spark_rl.cli", "spark_rl.grading",
           "spark_rl.trainer.grpo", "spark_rl.pipelines.synthesize", "spark_rl.prm.train", "spark_rl.prm.evaluate",
           "spark_rl.bootstrap"]


def stage_main(argv: list[str], log_path: str, cores: tuple[int, ...] | None, env: dict[str, str]) -> None:
    """A forked stage: pin, redirect, then the same `main` as `python -m spark_rl.cli`."""
    if cores:
        os.sched_setaffinity(0, cores)
    os.environ.update(env)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115  (lives as long as the process)
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.argv = ["spark-rl", *argv]
    mine = sorted(os.sched_getaffinity(0))
    print(f"spark-rl {argv[0]}: pid {os.getpid()}, forked from the preloaded stage server, on cores "
          f"{','.join(map(str, mine))}", flush=True)
    if "torch" in sys.modules:     # OpenMP counted the fork server's cores when torch loaded there
        sys.modules["torch"]._C.set_num_threads(len(mine))
    from spark_rl.cli import main

    try:
        code = main(argv)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        end_descendants()
    sys.exit(code)


def end_descendants() -> int:
    """Kill every process this one started that is still running; returns how many. A forked stage
    needs it: a multiprocessing child skips atexit, where Ray's shutdown stops the local cluster the
    stage started, and without it that cluster's dashboard and runtime-env agents outlive the stage,
    orphaned, for minutes (~140 MB each; measured 1-4 min). `ray.shutdown()` would take ~1.5 s; a
    SIGKILL needs no wait (the stage exits next, and init reaps what it leaves)."""
    import psutil

    procs = psutil.Process().children(recursive=True)
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    return len(procs)


class StageProcess:
    """A started stage: `pid`, `poll()` and `returncode`, as a `subprocess.Popen`."""

    def __init__(self, proc):
        self.proc = proc
        self.pid = proc.pid

    def poll(self) -> int | None:
        return self.proc.exitcode

    @property
    def returncode(self) -> int | None:
        return self.proc.exitcode

    def wait(self, timeout: float | None = None) -> int | None:
        self.proc.join(timeout)
        return self.proc.exitcode

    def terminate(self) -> None:
        self.proc.terminate()


class ForkServer:
    """Starts stages forked from a server that has imported `PRELOAD` once."""

    def __init__(self, preload: list[str] | None = None):
        import multiprocessing

        self.ctx = multiprocessing.get_context("forkserver")
        self.ctx.set_forkserver_preload(list(PRELOAD if preload is None else preload))

    def start(self, argv: list[str], log_path: Path, cores: tuple[int, ...] | None, env: dict[str, str]):
        Path(log_path).write_text("")
        proc = self.ctx.Process(target=stage_main, args=(list(argv), str(log_path), cores, dict(env)),
                                name=f"spark-rl {argv[0]}")
        proc.start()
        return StageProcess(proc)


class ExecStarter:
    """Starts each stage as a fresh `python -m spark_rl.cli` process (no preloading)."""

    def start(self, argv: list[str], log_path: Path, cores: tuple[int, ...] | None, env: dict[str, str]):
        with open(log_path, "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "spark_rl.cli", *argv], stdout=log,
                                    stderr=subprocess.STDOUT, env={**os.environ, **env})
        if cores:
            # pinned right after the exec, before the interpreter has started a thread or a child: its
            # threads, the Ray cluster it starts and every worker inherit the mask
            os.sched_setaffinity(proc.pid, cores)
        return proc
