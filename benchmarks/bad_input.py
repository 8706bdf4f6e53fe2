"""How fast bad input is refused: the wall-time figures the tests no longer assert.

The tests (tests/unit/test_bad_input.py, tests/integration/test_cluster.py) check that bad input is one
`error: …` line with exit status 2 and that no Ray session starts; how long that takes depends on the
machine's load, so it is measured here instead. Each figure is the median over ``--rounds`` runs of a
fresh ``python -m tune_app.cli`` process (interpreter start and imports included: what a user waits):

* ``a bad --set value``: ``run --set lr=-1`` (a config check), target < 20 s;
* ``a grid of 10^10 points (--dry-run)``: counted, never built, target < 10 s;
* ``an --address nobody listens on``: the socket probe before ``ray.init``, target < 30 s.

    python benchmarks/bad_input.py            # 3 rounds (≈ 1 min on 2 loaded cores)
    python benchmarks/bad_input.py --rounds 1
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GRID_KEYS = ("N", "B", "H", "X", "R", "batch_size", "num_epochs", "lr_patience", "max_bad_batches",
             "early_stopping_patience")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cases(tmp: Path) -> list[tuple[str, list[str], float]]:
    """(figure, arguments after ``run``, target seconds)."""
    grid = tmp / "grid.yaml"
    grid.write_text("method: grid\nparameters:\n" + "".join(
        f"  {k}: {{values: [{', '.join(str(i) for i in range(1, 11))}]}}\n" for k in GRID_KEYS))
    storage = ["--storage", str(tmp / "runs"), "--wandb", "disabled"]
    return [("a bad --set value", ["--set", "lr=-1", *storage], 20.0),
            ("a grid of 10^10 points (--dry-run)", ["--dry-run", "--space", str(grid), *storage], 10.0),
            ("an --address nobody listens on", ["--address", f"127.0.0.1:{_free_port()}", *storage], 30.0)]


def _seconds(args: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tune_app.cli", "run", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    took = time.perf_counter() - start
    if proc.returncode != 2 or not proc.stderr.startswith("error: "):
        raise SystemExit(f"run {' '.join(args)}: expected one error line and exit 2, got {proc.returncode}:\n"
                         f"{proc.stderr[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each case; the median is printed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="polsess-bad-input-") as folder:
        cases = _cases(Path(folder))
        times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for _ in range(args.rounds):
            for name, argv, _ in cases:
                times[name].append(_seconds(argv))
    for name, _, target in cases:
        print(f"{name}, seconds to the error line: {statistics.median(times[name]):.1f} (target < {target:.0f})")


if __name__ == "__main__":
    main()
