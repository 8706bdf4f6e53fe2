"""The commands behind ``polsess-tune``: one module each, called by :mod:`tune_app.cli` with parsed args.

``local`` (make-data, train, evaluate: polsess alone, no Ray), ``run``, ``resume``, ``results`` and
``validate`` (top configs × seeds);
``options`` is what the shared flags mean. Commands never import the CLI: it depends on them.
"""
