"""Chaos for shared studies: workers killed with SIGKILL again and again and replaced, the database restarted
under them. The study must still end exactly as one uninterrupted run does (the callers compare).

:func:`run_chaos` starts ``workers`` processes (``start(slot, stdout, stderr)``; a slot keeps its study
folder and log files across replacements), then, until one of them finishes the study, kills a random
live worker with SIGKILL every ``every`` seconds (at most ``kills`` times) and starts a replacement in its
slot; with ``restart`` (a callable that takes the database down and brings it back) it does so once, as
soon as ``ready()`` says jobs are running. Workers that end by themselves must end with exit 0: nobody
restarts a worker by hand. Used by ``tests/dse/test_study_chaos.py`` (the fake study, small) and
``benchmarks/chaos.py`` (the digits study, full size).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

#: start(slot, stdout, stderr) -> the worker's process.
Start = Callable[[int, IO[str], IO[str]], subprocess.Popen]


@dataclass
class Ended:
    """A worker that ended by itself (not killed): its slot, exit code and log files."""

    slot: int
    code: int
    stdout: Path
    stderr: Path

    def err(self) -> str:
        return self.stderr.read_text(errors="replace")


@dataclass
class ChaosResult:
    """What happened: kills, database restarts (and how long it was down), workers started, the ends."""

    kills: int = 0
    restarts: int = 0
    down_seconds: float = 0.0
    started: int = 0
    seconds: float = 0.0
    ended: list[Ended] = field(default_factory=list)
    killed_logs: list[Path] = field(default_factory=list)
    timed_out: bool = False

    def failures(self) -> list[Ended]:
        """Workers that ended by themselves with an error (none may)."""
        return [e for e in self.ended if e.code != 0]

    def logs(self) -> str:
        """Every worker's error output (ended and killed), for a failure message."""
        parts = [f"--- slot {e.slot} exit {e.code}:\n{e.err()[-3000:]}" for e in self.ended]
        parts += [f"--- killed {p.name}:\n{p.read_text(errors='replace')[-1500:]}" for p in self.killed_logs]
        return "\n".join(parts)


def run_chaos(
    start: Start,
    logs: Path,
    workers: int,
    kills: int,
    every: tuple[float, float],
    seed: int = 0,
    restart: Callable[[], float] | None = None,
    ready: Callable[[], bool] = lambda: True,
    timeout: float = 600.0,
    say: Callable[[str], None] = lambda text: None,
) -> ChaosResult:
    """Run workers under chaos until they all end (see the module's docstring); ``say`` narrates."""
    rng = random.Random(seed)
    logs.mkdir(parents=True, exist_ok=True)
    result = ChaosResult()
    running: dict[int, tuple[subprocess.Popen, Path, Path]] = {}
    clock = time.monotonic()

    def launch(slot: int) -> None:
        result.started += 1
        out, err = logs / f"worker{slot}.{result.started}.out", logs / f"worker{slot}.{result.started}.err"
        with open(out, "w") as stdout, open(err, "w") as stderr:
            running[slot] = (start(slot, stdout, stderr), out, err)

    for slot in range(workers):
        launch(slot)
    done = False  # a worker finished the study: no more chaos, the others finish too
    next_kill = time.monotonic() + rng.uniform(*every)
    try:
        while running:
            for slot, (process, out, err) in list(running.items()):
                if process.poll() is not None:
                    del running[slot]
                    result.ended.append(Ended(slot, process.returncode, out, err))
                    done = done or process.returncode == 0
                    say(f"worker in slot {slot} ended with exit {process.returncode}")
            now = time.monotonic()
            if now - clock > timeout:
                result.timed_out = True
                break
            if not done and restart is not None and not result.restarts and _safely(ready):
                say("restarting the database while jobs run")
                result.down_seconds = restart()
                result.restarts += 1
                say(f"the database was down for {result.down_seconds:.1f} s")
            elif not done and result.kills < kills and running and now >= next_kill:
                slot = rng.choice(sorted(running))
                process, _, err = running.pop(slot)
                process.send_signal(signal.SIGKILL)
                process.wait()
                result.kills += 1
                result.killed_logs.append(err)
                say(f"kill {result.kills}: SIGKILL to the worker in slot {slot} (pid {process.pid}); replacing it")
                launch(slot)
                next_kill = time.monotonic() + rng.uniform(*every)
            time.sleep(0.05)
    finally:
        for process, _, _ in running.values():  # timed out: stop what is left
            process.kill()
            process.wait()
        result.seconds = time.monotonic() - clock
    return result


def _safely(ready: Callable[[], bool]) -> bool:
    """``ready()``, False when it cannot tell (the storage it reads is being created or is down)."""
    try:
        return bool(ready())
    except Exception:
        return False
