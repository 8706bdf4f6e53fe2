"""An experiment folder, read back: the only code that knows Tune's on-disk names (:mod:`.layout`).

:mod:`.results` loads trials and their per-epoch history; :mod:`.report` prints and exports them;
:mod:`.warm_start` (with :mod:`.warm_sources`) turns earlier runs into evaluated points;
:mod:`.importance` and :mod:`.plots` are the analysis views; :mod:`.pareto` (and :mod:`.pareto_plot`) the
front of a multi-objective search; :mod:`.study` the Optuna study's storage (:mod:`.study_plots`:
Optuna's views of it); :mod:`.validation` a seed validation's scores and verdict. No Ray import: all of it works on a
copy of a folder taken from a cluster.
"""
