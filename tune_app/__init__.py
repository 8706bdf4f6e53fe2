"""polsess-tune's Ray Tune application; :mod:`polsess` is the domain library it tunes.

Layers, each importing only those below it (tests/unit/test_architecture.py checks it):

- :mod:`.cli` — argparse and dispatch; depends on the commands, never the reverse;
- :mod:`.commands` — make-data, train, evaluate, run, resume, results;
- :mod:`.tune` — the search on Ray Tune's public API (plan, driver, trainable, stages, cluster);
- :mod:`.ext` — every private Ray/W&B name, fenced, pinned and contract-tested;
- :mod:`.experiment` — an experiment folder read back (the only code that knows Tune's file names);
- :mod:`.space` — sweep files → search specs, Optuna's view of them (no Ray);
- :mod:`.builtin`, :mod:`.names`, :mod:`.errors` — shared leaves: package data, statuses and metric
  names, user-error types.
"""
