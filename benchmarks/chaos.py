"""Chaos at full size: the digits study run by workers killed again and again, its database restarted under them.

    python benchmarks/chaos.py                           # PostgreSQL (3 workers) and a journal file (2 workers)
    python benchmarks/chaos.py --set search.budget=4000 --set confirmation.candidates=40 --every 2 5 --kills 15
    python benchmarks/chaos.py --storage postgresql --kills 20 --every 3 8 --seed 1 --out runs/chaos

Measured on 2 busy cores: the digits study as shipped survived 10 kills and a 3.2 s database restart on
PostgreSQL (65 s) and 3 kills on a journal (23 s); the bigger second line 15 kills and the restart (108 s) and
10 kills on a journal (45 s); each ended with the uninterrupted front, every measurement once, no claim left.

1. Runs the study (default ``studies/digits.toml``, the real network and every built-in design) once without
   interruption, in one process with its default SQLite storage: the reference.
2. PostgreSQL: starts a throwaway server on loopback (``tests/dse/postgres.py``; PostgreSQL and psycopg2 must
   be installed), runs three ``dse run --worker`` processes against it, each in its own study folder as on
   three machines, kills a random one with SIGKILL every ``--every`` seconds (up to ``--kills`` times) and
   starts a replacement in its folder, and restarts the server once (down ``--down`` seconds) while
   measurements run. Nobody restarts a worker by hand: a worker that ends by itself must end with exit 0.
3. Journal file: the same with two workers sharing one folder and one journal file, kills only.
4. Checks each against the reference: every finished worker's front (assignments, top-1, energy saved)
   is the reference's, the storage holds exactly the reference's measurements, none twice, and no claim
   is left RUNNING. Prints how many kills and restarts each survived; the exit status is 0 only when
   every check holds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.dse.chaos import ChaosResult, run_chaos  # noqa: E402
from tests.dse.postgres import PostgresServer  # noqa: E402
from tests.dse.study_procs import front_of, measured_hashes, storage_of, trials  # noqa: E402

#: Every worker measures in its own process (several workers already share the cores).
ONE_JOB = ("confirmation.jobs=1",)


def dse(study: Path, out: Path, *args: str, stdout=None, stderr=None) -> subprocess.Popen:
    """``dse run STUDY --out OUT --quiet ARGS`` in a new process."""
    argv = [sys.executable, "-m", "dse.cli", "run", str(study), "--out", str(out), "--quiet", *args]
    return subprocess.Popen(argv, cwd=REPO, stdout=stdout, stderr=stderr, text=True)


def sets(items: tuple[str, ...]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def check(name: str, result: ChaosResult, storage, folders: list[Path], reference: Path) -> list[str]:
    """What differs from the reference (nothing, when the study survived)."""
    from optuna.trial import TrialState

    problems = []
    if result.timed_out:
        problems.append("timed out")
    for ended in result.failures():
        problems.append(f"a worker (slot {ended.slot}) ended with exit {ended.code}: {ended.err()[-600:]}")
    expected = front_of(reference)
    for folder in folders:
        if not (folder / "front.json").is_file():
            problems.append(f"{folder} has no front")
        elif front_of(folder) != expected:
            problems.append(f"{folder}: the front differs from the uninterrupted run's")
    hashes = measured_hashes(storage)
    if len(hashes) != len(set(hashes)):
        problems.append(f"{len(hashes) - len(set(hashes))} measurement(s) made twice")
    wanted = sorted(measured_hashes(storage_of(reference)))
    if sorted(set(hashes)) != wanted:
        problems.append(f"measurements differ: {len(set(hashes))} made, the uninterrupted run made {len(wanted)}")
    left = trials(storage, "claims", (TrialState.RUNNING,))
    if left:
        problems.append(f"{len(left)} claim(s) left behind")
    said = [e.err() for e in result.ended] + [p.read_text(errors="replace") for p in result.killed_logs]
    lost = sum("lost the connection to the study's storage" in text for text in said)
    back = sum("answers again" in text for text in said)
    taken = sum(text.count("its worker is gone") for text in said)
    print(f"{name}: {result.kills} kills, {result.restarts} database restart(s) (down {result.down_seconds:.1f} s), "
          f"{result.started} worker processes, {result.seconds:.0f} s; {lost} worker(s) lost the database and "
          f"{back} saw it back; {taken} job(s) of killed workers taken over; "
          + ("the uninterrupted front, every measurement once, no claim left" if not problems else
             f"{len(problems)} problem(s)"))
    for problem in problems:
        print(f"  {problem}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", type=Path, default=REPO / "studies" / "digits.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="TABLE.KEY=VALUE")
    parser.add_argument("--storage", choices=["postgresql", "journal", "both"], default="both")
    parser.add_argument("--kills", type=int, default=12, help="most kills per storage (default 12)")
    parser.add_argument("--every", type=float, nargs=2, default=(3.0, 7.0), metavar=("LOW", "HIGH"),
                        help="seconds between kills, drawn uniformly (default 3 7)")
    parser.add_argument("--down", type=float, default=3.0, help="seconds the database stays down (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the chaos (default 0)")
    parser.add_argument("--out", type=Path, help="folder for the runs and logs (default: a temporary folder)")
    parser.add_argument("--reference", type=Path, help="an uninterrupted run's study folder to compare with")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="dse-chaos-"))
    out.mkdir(parents=True, exist_ok=True)
    overrides = (*args.overrides, *ONE_JOB)
    say = lambda text: print(f"  [{time.strftime('%H:%M:%S')}] {text}", flush=True)  # noqa: E731

    reference = args.reference or out / "reference"
    if not (reference / "front.json").is_file():
        print(f"uninterrupted run into {reference} ...", flush=True)
        clock = time.monotonic()
        code = dse(args.study, reference, *sets(overrides)).wait()
        if code:
            print(f"the uninterrupted run failed (exit {code})")
            return 1
        print(f"  {time.monotonic() - clock:.0f} s")
    problems: list[str] = []

    if args.storage in ("postgresql", "both"):
        with PostgresServer() as server:
            folders = [out / f"postgresql-machine{slot}" for slot in range(3)]
            extra = sets((*overrides, f"storage.url={server.url}"))

            def start(slot, stdout, stderr):
                return dse(args.study, folders[slot], "--worker", *extra, stdout=stdout, stderr=stderr)

            reader: list = []  # one storage for every look (each would hold connections)

            def measuring() -> bool:  # past the baseline and two calibration points, with a job claimed
                from optuna.trial import TrialState

                if not reader:
                    reader.append(storage_of(out, url=server.url))
                return (len(trials(reader[0], "confirm", (TrialState.COMPLETE,))) >= 3
                        and bool(trials(reader[0], "claims", (TrialState.RUNNING,))))

            print(f"PostgreSQL {server.url}: 3 workers, a kill every {args.every[0]:g}-{args.every[1]:g} s", flush=True)
            result = run_chaos(start, out / "postgresql-logs", workers=3, kills=args.kills, every=tuple(args.every),
                               seed=args.seed, restart=lambda: server.restart(down=args.down), ready=measuring,
                               timeout=3600, say=say)
            problems += check("PostgreSQL", result, storage_of(out, url=server.url), folders, reference)
            if not result.restarts:
                problems.append("the database was not restarted (the study ended first)")

    if args.storage in ("journal", "both"):
        folder = out / "journal"
        extra = sets((*overrides, "storage.journal=study.journal"))

        def start(slot, stdout, stderr):
            return dse(args.study, folder, "--worker", *extra, stdout=stdout, stderr=stderr)

        print(f"journal {folder / 'study.journal'}: 2 workers, a kill every {args.every[0]:g}-{args.every[1]:g} s",
              flush=True)
        result = run_chaos(start, out / "journal-logs", workers=2, kills=args.kills, every=tuple(args.every),
                           seed=args.seed, timeout=3600, say=say)
        problems += check("journal", result, storage_of(folder, journal="study.journal"), [folder], reference)

    print(f"runs and logs in {out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
