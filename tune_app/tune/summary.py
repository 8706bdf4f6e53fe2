"""How a search ends on the console: the table, the errors, the summary line, the exit status.

Shared by ``run``, ``resume`` and each stage of a staged search, so all three end the same way:
an interrupted search says how to resume and exits 130; a finished one exports its best config
(leaving errored trials out) and exits 0, or 1 when any trial errored.
"""

from __future__ import annotations

from pathlib import Path

from ..experiment.layout import BEST_CONFIG, RESULTS_CSV, STOPPED_FILE, WANDB_DIR, read_json
from ..experiment.location import is_uri, open_experiment, parent, push
from ..experiment.location import shown as location_shown
from ..experiment.report import best_checkpoint_line, error_lines, export_best, summary_line, table, write_csv
from ..experiment.results import load_experiment
from ..ext.wandb_offline import incomplete_runs_line
from ..names import UNFINISHED


def finish(where: str | Path, wall_s: float, num_samples: int, resume_hint: str | Path | None = None,
           best: bool = True) -> int:
    """Summarise the experiment at ``where`` (a folder or a URI); the exit status of the command that ran it.
    ``best=False`` (a validation): no best run named or exported; its verdict is by mean over seeds (tune.validate)."""
    folder, shown = open_experiment(where)
    try:
        return _finish(folder, shown, wall_s, num_samples, resume_hint or shown, best)
    finally:
        if is_uri(shown):  # what the summary wrote goes into the bucket beside the trials
            push(folder, shown, [RESULTS_CSV, BEST_CONFIG])


def _finish(folder: Path, shown: str, wall_s: float, num_samples: int, hint: str | Path, best: bool) -> int:
    exp = load_experiment(folder)
    write_csv(exp, folder / RESULTS_CSV)
    print()
    print(table(exp, top=5))
    for line in error_lines(exp):
        print(line)
    print(f"\n{summary_line(exp)} in {wall_s / 60:.1f} min")
    if wandb_line := incomplete_runs_line(exp, folder / WANDB_DIR):  # what W&B lost, by trial
        print(wandb_line)
    if is_uri(shown):
        print(f"W&B offline runs: {folder / WANDB_DIR} (on this machine, beside the driver)")
    unfinished = not exp.all_started(num_samples) or any(t.status in UNFINISHED for t in exp.trials)
    stopped = read_json(folder / STOPPED_FILE)
    if unfinished and stopped:
        print(f"search stopped: {stopped.get('reason')}; fix that, then `polsess-tune resume {hint}`")
        return 1
    if unfinished:
        print(f"search interrupted; state saved. Resume it with: polsess-tune resume {hint}")
        return 130
    errored = exp.errored()
    if errored:
        kind, count, reason = exp.error_reasons()[0]
        print(f"search failed: {len(errored)} of {len(exp.trials)} trials errored, "
              f"{'all' if count == len(errored) else count} with {kind}: {reason}")
        if any("No space left on device" in t.error for t in errored if t.error):
            print(f"error: no space left under {parent(shown)}; free space there and resume with "
                  f"`polsess-tune resume {hint}` (errored trials continue from their checkpoints)")
    if exp.best_trial() is None:
        print("no trial finished with a score: no best config exported" if errored else
              "no trial reported a score; see the errors above")
        return 1
    if best:
        out = export_best(exp, folder / BEST_CONFIG)
        print(best_checkpoint_line(exp))
        print(f"best config: {location_shown(out)}" + (" (from the trials that did not error)" if errored else ""))
    print(f"results: polsess-tune results {shown}")
    if errored:
        print(f"rerun the errored trials with: polsess-tune resume {hint} --restart-errored")
        return 1
    return 0
