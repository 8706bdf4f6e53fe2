"""Lines the raylet sends to the driver's console, which no logging handler sees.

Ray's driver runs a thread that prints what the raylet publishes for the job (a worker that died,
a task killed for memory) straight to stdout, ``(raylet) A worker died or was killed …``, through
the log deduplicator of ``ray._private.worker``. Its skip pattern is public only as the environment
variable ``RAY_DEDUP_LOGS_SKIP_REGEX``, read once when ray is imported, which in a driver has
happened long before the search starts; so the pattern is set on the deduplicator itself.
"""

from __future__ import annotations

import re


def skip_raylet_lines(pattern: str) -> None:
    """Drop the raylet's console lines that match ``pattern`` (a regex), beside any the user skips."""
    from ray._private import worker

    dedup = worker.stdout_deduplicator
    own = dedup.skip_re.pattern if dedup.skip_re is not None else None
    if own is not None and pattern in own:
        return
    dedup.skip_re = re.compile(pattern if own is None else f"(?:{own})|(?:{pattern})")
