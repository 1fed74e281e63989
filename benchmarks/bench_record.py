"""What recording a run in the run store costs ``hil train``: recorded vs ``--no-record``, one process.

Usage: python benchmarks/bench_record.py [--epochs N] [--repeats R] [--builtin]
Runs ``hil train --preset reference --max-epochs N --patience 0 -q`` on the emulator (HIL_TRACE's
device unless --builtin) R times each way, alternating, in this process (a fresh store each time),
and prints the best and median wall time of each, the ratio recorded / --no-record, the cost per
epoch and the store's size per epoch. The ratio is the figure to compare across machines.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

from crossbar_hil.api.cli import main as hil


def one(epochs: int, builtin: bool, store: Path | None) -> float:
    """Wall time (s) of one ``hil train`` run (recorded in ``store``; None: --no-record)."""
    argv = ["train", "-q", "--preset", "reference", "--max-epochs", str(epochs), "--patience", "0"]
    argv += ["--builtin"] if builtin else []
    argv += ["--no-record"] if store is None else ["--database", str(store)]
    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = hil(argv)
    elapsed = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"hil train exited {code}:\n{out.getvalue()}")
    return elapsed


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--builtin", action="store_true", help="Ignore HIL_TRACE: use the built-in device.")
    args = ap.parse_args()
    plain: list[float] = []
    recorded: list[float] = []
    size_b = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            plain.append(one(args.epochs, args.builtin, None))
            store = Path(tmp) / f"runs{i}.sqlite3"
            recorded.append(one(args.epochs, args.builtin, store))
            size_b = sum(p.stat().st_size for p in Path(tmp).glob(f"runs{i}.sqlite3*"))
    best_plain, best_rec = min(plain), min(recorded)
    print(
        f"hil train --preset reference --max-epochs {args.epochs} --patience 0, {args.repeats} runs each way"
    )
    print(f"--no-record: best {best_plain:.2f} s, median {statistics.median(plain):.2f} s")
    print(f"recorded:    best {best_rec:.2f} s, median {statistics.median(recorded):.2f} s")
    print(
        f"ratio recorded / --no-record: {best_rec / best_plain:.2f} (best), "
        f"{statistics.median(recorded) / statistics.median(plain):.2f} (median)"
    )
    print(f"recording costs {(best_rec - best_plain) / args.epochs * 1e3:.3f} ms per epoch")
    print(f"store: {size_b / 1e6:.1f} MB, {size_b / (args.epochs + 1) / 1e3:.2f} kB per epoch")


if __name__ == "__main__":
    main()
