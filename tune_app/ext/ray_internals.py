"""Two facts Ray knows but exposes only through ``ray._private`` (local GPUs, its token-auth set-up),
and one internal set Tune reads (the driver variables it copies into trials' runtime_env).

- :func:`local_gpu_count`: the GPUs a local Ray will schedule, counted as Ray counts them (NVML,
  capped by ``CUDA_VISIBLE_DEVICES``) without importing torch, whose import alone took 1.6 s of
  every run's start.
- :func:`enable_token_auth_from_available_token`: ``ray.init(address="auto")`` turns token auth on
  when a token is available, an explicit ``HOST:PORT`` does not (and then fails after ~20 s with a
  ConnectionError that does not mention the token); this is Ray's own step for "auto".
- :func:`keep_credentials_out_of_runtime_env`: cloud credentials stay out of Ray's logs.
- :func:`node_start_timed_out`: Ray's bare ``Exception`` for a local node that missed its start.
"""

from __future__ import annotations

import functools

# ray._private.node.Node: raised as a bare Exception when the new local node's raylet has not
# registered within a fixed 30 s (a busy machine); only its words tell it from any other failure.
NODE_START_TIMEOUT = "timed out during startup"


def node_start_timed_out(exc: Exception) -> bool:
    return NODE_START_TIMEOUT in str(exc)


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


# What Tune copies from the driver's environment into every trainable's runtime_env (ray 2.60).
CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN")


def keep_credentials_out_of_runtime_env() -> None:
    """Tune puts the driver's AWS credentials into each trainable's runtime_env
    (``class_cache.ENV_VARS_TO_PROPAGATE``), and Ray's runtime_env agent writes every runtime_env in
    full into ``runtime_env_agent.log`` (ray#29985 confined such logs to that file; it did not drop
    them). A secret must not reach Ray's files: take them out. Local trials still have them, inherited
    from the driver through the Ray it starts; each node of a cluster reads its own (README)."""
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE.difference_update(CREDENTIAL_VARS)
