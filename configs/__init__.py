"""The built-in experiment configs; installed as the package data ``tune_app.builtin.configs``."""
