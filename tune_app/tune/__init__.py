"""Running searches on Ray Tune's public API: the plan, the driver, the trainable, stages, clusters.

:mod:`.plan` resolves and checks a search before Ray starts; :mod:`.driver` builds the ``Tuner``
(OptunaSearch, ASHA, W&B, checkpoints) and runs or restores it; :mod:`.trainable` is one trial;
:mod:`.staged` runs stages one experiment each; :mod:`.cluster` attaches to a Ray cluster;
:mod:`.summary` is how a search ends; :mod:`.validate` retrains top configs with several seeds;
:mod:`.packing` decides ``--gpus-per-trial auto``. Anything that needs a private Ray or W&B name lives in
:mod:`tune_app.ext` instead.
"""
