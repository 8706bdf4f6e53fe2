"""Attaching to an existing Ray cluster: address, token authentication, shipping our code.

Ray 2.60 clusters use token authentication by default. ``address="auto"`` turns it on when a
token is available, but an explicit ``HOST:PORT`` does not, and then fails after ~20 s with a
ConnectionError that does not mention the token. Here an explicit address gets the same
treatment, and a failure names what is missing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polsess
import tune_app

from ..errors import TuneInputError

TOKEN_HELP = (
    "set RAY_AUTH_TOKEN to the head's token (`ray get-auth-token` on the head prints it), or "
    "RAY_AUTH_TOKEN_PATH to a file holding it, or copy it to ~/.ray/auth_token"
)
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "beegfs", "glusterfs", "cephfs",
                       "ceph", "fuse.sshfs", "fuse.juicefs", "fuse.s3fs", "fuse.gcsfuse", "9p", "virtiofs"}


def default_token_file() -> Path:
    """Where Ray keeps a machine's cluster token."""
    return Path.home() / ".ray" / "auth_token"


def token_source(env: Mapping[str, str] = os.environ) -> str | None:
    """Where a Ray auth token would come from on this machine (the token itself is never read)."""
    if env.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    path = env.get("RAY_AUTH_TOKEN_PATH")
    if path and Path(path).expanduser().is_file():
        return f"RAY_AUTH_TOKEN_PATH ({path})"
    default = default_token_file()
    if default.is_file():
        return str(default)
    return None


def check_address(address: str) -> None:
    """Refuse what cannot work, fast: Ray Client addresses, and addresses nobody listens on."""
    if address.startswith("ray://"):
        raise TuneInputError(
            f"--address {address}: Ray Client (ray://) runs the search driver remotely, so its experiment "
            "folder, checkpoints and W&B runs would live where this command cannot manage them; run the "
            "driver on the head instead: `ray job submit --address http://HEAD:8265 --working-dir . -- "
            "polsess-tune run ...`, or pass --address HEAD:6379 from a machine inside the cluster"
        )
    if address == "auto":
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise TuneInputError(f"--address {address}: expected auto or HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as exc:
        raise TuneInputError(
            f"--address {address}: nothing answers there ({exc.strerror or exc}); start the head with "
            f"`ray start --head --port {port}` or check the address"
        ) from None


def enable_token_auth(address: str) -> str | None:
    """Turn token auth on for an explicit address when a token is available (as 'auto' does)."""
    if os.environ.get("RAY_AUTH_MODE"):
        return token_source()
    source = token_source()
    if source and address != "auto":
        from ..ext.ray_internals import enable_token_auth_from_available_token

        enable_token_auth_from_available_token()
    return source


def attach_error(address: str, exc: BaseException, source: str | None) -> TuneInputError:
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        why = "RAY_AUTH_MODE=disabled here, but the cluster may require a token; unset it and " + TOKEN_HELP
    elif source is None:
        why = "no Ray auth token was found on this machine and Ray clusters require one by default; " + TOKEN_HELP
    else:
        why = f"the token from {source} was refused or the head is unreachable; check it matches the head's"
    return TuneInputError(f"--address {address}: could not attach to the Ray cluster ({type(exc).__name__}): {why}")


def runtime_env(wandb_mode: str) -> dict[str, Any]:
    """What trials need on other nodes: our code (workers may not have it installed) and the
    settings that otherwise live only in the driver's environment. No secret goes in here: the
    W&B callback hands WANDB_API_KEY to its own logging actors on the driver's node."""
    env_vars = {"WANDB_MODE": wandb_mode, "RAY_AIR_NEW_OUTPUT": "0", "PYTHONUNBUFFERED": "1"}
    return {
        "py_modules": [str(Path(polsess.__file__).parent), str(Path(tune_app.__file__).parent)],
        "env_vars": env_vars,
    }


def filesystem_type(path: Path) -> str:
    """The mount type of the file system holding ``path`` (from /proc/mounts), '' if unknown."""
    path = path.resolve()
    while not path.exists():
        path = path.parent
    best, kind = "", ""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return ""
    for line in mounts:
        parts = line.split()
        if len(parts) < 3 or len(parts[1]) <= len(best):
            continue
        if str(path) == parts[1] or str(path).startswith(parts[1].rstrip("/") + "/"):
            best, kind = parts[1], parts[2]
    return kind


def check_cluster(storage: str, gpus_per_trial: float) -> None:
    """Once attached: enough GPUs for one trial, and storage every node can reach."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0)
    if gpus_per_trial > gpus:
        raise TuneInputError(f"--gpus-per-trial {gpus_per_trial:g}: the cluster has {gpus:g} GPU(s)")
    hosts = {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
    if len(hosts) > 1 and "://" not in storage and filesystem_type(Path(storage)) not in NETWORK_FILESYSTEMS:
        raise TuneInputError(
            f"--storage {storage}: a local folder, but the cluster spans {len(hosts)} machines "
            f"({', '.join(sorted(hosts))}); trials on other machines could not write checkpoints there: use a "
            "shared folder (NFS, Lustre, ...) mounted at the same path on every node, or s3://… / gs://…"
        )
