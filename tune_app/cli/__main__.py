"""``python -m tune_app.cli``: the same as the ``polsess-tune`` command."""

import sys

from . import main

sys.exit(main())
