"""Two facts Ray knows but exposes only through ``ray._private``: local GPUs, and its token-auth set-up.

- :func:`local_gpu_count`: the GPUs a local Ray will schedule, counted as Ray counts them (NVML,
  capped by ``CUDA_VISIBLE_DEVICES``) without importing torch, whose import alone took 1.6 s of
  every run's start.
- :func:`enable_token_auth_from_available_token`: ``ray.init(address="auto")`` turns token auth on
  when a token is available, an explicit ``HOST:PORT`` does not (and then fails after ~20 s with a
  ConnectionError that does not mention the token); this is Ray's own step for "auto".
"""

from __future__ import annotations

import functools


@functools.cache
def local_gpu_count() -> int:
    from ray._private.accelerators import NvidiaGPUAcceleratorManager as nvidia

    count = nvidia.get_current_node_num_accelerators()
    visible = nvidia.get_current_process_visible_accelerator_ids()
    return count if visible is None else min(count, len(visible))


def enable_token_auth_from_available_token() -> None:
    """Set RAY_AUTH_MODE=token and have Ray re-read its C++ config, as ``address="auto"`` does."""
    from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available

    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
