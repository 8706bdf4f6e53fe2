"""The built-in W&B sweep files; installed as the package data ``tune_app.builtin.search_spaces``."""
