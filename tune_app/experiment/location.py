"""Where an experiment lives: a local folder, or a URI (``s3://…``, ``gs://…``) read and written
through ``pyarrow.fs``, the filesystem layer Ray Tune itself stores experiments through.

Every reader of :mod:`tune_app.experiment` reads a local folder. For a URI experiment, :func:`pull`
mirrors the experiment into its **driver folder** (under the user's data dir, one per URI) without
the checkpoints' contents, the readers read that, and :func:`push` uploads what a command wrote
(``search.json``, ``results.csv``, ``best_config.yaml``, ...). One copy step in front of the readers
instead of a second, URI-reading version of each of them.

The driver folder also holds what belongs to the machine the driver runs on, never to the bucket:
the W&B offline runs (``wandb-runs/``), the lock of the command driving the experiment, and plots.
Its path spells the URI (``<data dir>/remote/s3/<bucket>/<key>``), so :func:`shown` turns any path
inside it back into the URI a user typed.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from ..errors import TuneInputError
from . import layout

REMOTE_DIR = "remote"  # under the user data dir: one driver folder per URI experiment
PLOTS_DIR = "plots"
# Top-level names in a driver folder that are the driver's own: pull neither fetches nor deletes them.
DRIVER_ONLY = frozenset({layout.WANDB_DIR, layout.LOCK_FILE, PLOTS_DIR, layout.BACKUP_DIR})


def is_uri(location: str | Path) -> bool:
    return "://" in str(location)


def join(location: str, *names: str) -> str:
    """``location/name/...`` for a URI or a local path, as text."""
    return "/".join([str(location).rstrip("/"), *names])


def parent(location: str) -> str:
    return str(location).rstrip("/").rsplit("/", 1)[0] if is_uri(location) else str(Path(location).parent)


def name(location: str) -> str:
    return str(location).rstrip("/").rsplit("/", 1)[-1]


def data_home() -> Path:
    import platformdirs

    return platformdirs.user_data_path("polsess-tune")


def driver_folder(uri: str) -> Path:
    """The local folder of a URI experiment on this machine (not created here)."""
    parts = urlsplit(uri.rstrip("/"))
    key = [p for p in PurePosixPath(parts.path).parts if p not in ("/", "..", ".")]
    return (data_home() / REMOTE_DIR / parts.scheme / parts.netloc).joinpath(*key)


def local_folder(location: str | Path) -> Path:
    """The folder the readers read: the path itself, or a URI's driver folder."""
    return driver_folder(str(location)) if is_uri(location) else Path(location)


def shown(path: str | Path) -> str:
    """A path as the user should see it: inside a driver folder, the URI it mirrors."""
    path = Path(path)
    try:
        rel = path.relative_to(data_home() / REMOTE_DIR)
    except ValueError:
        return str(path)
    scheme, *rest = rel.parts
    return f"{scheme}://{'/'.join(rest)}" if rest else str(path)


def filesystem(uri: str, what: str = "") -> tuple[object, str]:
    """``(pyarrow FileSystem, path inside it)`` of ``uri``; one error line when pyarrow cannot
    make one (an unknown scheme, a filesystem this pyarrow lacks). Credentials and the endpoint
    come from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``,
    ``~/.aws/credentials``, ...), as for Ray."""
    import pyarrow.fs as pafs

    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (OSError, ValueError, NotImplementedError) as exc:  # pyarrow's ArrowInvalid / NotImplemented
        raise TuneInputError(f"{what or uri}: pyarrow cannot open this URI ({_first_line(exc)}); "
                             "use s3://bucket/prefix, gs://bucket/prefix or a local folder") from None
    return fs, path.rstrip("/")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _access_error(uri: str, what: str, exc: BaseException) -> TuneInputError:
    return TuneInputError(
        f"{what}: cannot reach {uri} ({_first_line(exc)}); give this machine credentials for the bucket "
        "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials; AWS_ENDPOINT_URL for an "
        "S3-compatible server) and check the bucket's name")


def check_writable(uri: str, what: str) -> None:
    """Before Ray starts: the bucket exists and this machine may write and delete under ``uri``
    (a probe object, removed again). Ray would otherwise fail with a traceback at its first write."""
    import pyarrow.fs as pafs

    fs, path = filesystem(uri, what)
    bucket = path.split("/", 1)[0]
    try:
        info = fs.get_file_info(bucket)
    except OSError as exc:
        raise _access_error(uri, what, exc) from None
    if info.type == pafs.FileType.NotFound:
        raise TuneInputError(f"{what}: the bucket {bucket!r} does not exist; create it first (e.g. "
                             f"`aws s3 mb s3://{bucket}`) or fix its name")
    probe = f"{path}/.polsess-tune-probe-{uuid.uuid4().hex[:8]}"
    try:
        with fs.open_output_stream(probe) as fh:
            fh.write(b"probe")
        fs.delete_file(probe)
    except OSError as exc:
        raise _access_error(uri, what, exc) from None


def exists(uri: str) -> bool:
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    try:
        return fs.get_file_info(path).type != pafs.FileType.NotFound
    except OSError as exc:
        raise _access_error(uri, uri, exc) from None


def pull(uri: str) -> Path:
    """Mirror the experiment at ``uri`` into its driver folder and return that folder.

    Files changed since the last pull (size or modification time) are fetched again, files gone from
    the bucket are removed; checkpoint folders come as empty folders (their names tell which whole
    checkpoints exist; their weights stay in the bucket, where Tune restores them from)."""
    import pyarrow.fs as pafs

    fs, root = filesystem(uri)
    local = driver_folder(uri)
    try:
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise _access_error(uri, uri, exc) from None
    files: dict[str, object] = {}
    dirs: set[str] = set()
    for info in infos:
        rel = info.path[len(root):].strip("/")
        parts = rel.split("/")
        if not rel or parts[0] in DRIVER_ONLY:
            continue
        in_checkpoint = any(p.startswith(layout.CHECKPOINT_PREFIX) for p in parts[:-1])
        if info.type == pafs.FileType.Directory:
            if not parts[-1].startswith(layout.CHECKPOINT_PREFIX):
                dirs.add(rel)
        elif in_checkpoint and parts[-1] == layout.CHECKPOINT_FILE:
            # Only a checkpoint with its trainer state counts: a kill mid-upload leaves a folder without.
            dirs.add("/".join(parts[:-1]))
        elif not in_checkpoint:
            files[rel] = info
    local.mkdir(parents=True, exist_ok=True)
    for rel in dirs:
        (local / rel).mkdir(parents=True, exist_ok=True)
    for rel, info in files.items():
        dest = local / rel
        mtime = info.mtime.timestamp() if info.mtime else None
        if dest.is_file() and dest.stat().st_size == info.size and mtime and dest.stat().st_mtime == mtime:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        with fs.open_input_stream(info.path) as src, open(tmp, "wb") as out:
            out.write(src.read())
        if mtime:
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, dest)
    _remove_stale(local, set(files), dirs)
    return local


def _remove_stale(local: Path, files: set[str], dirs: set[str]) -> None:
    for path in sorted(local.rglob("*"), key=lambda p: -len(p.parts)):
        rel = path.relative_to(local).as_posix()
        if rel.split("/")[0] in DRIVER_ONLY:
            continue
        if path.is_file() and rel not in files:
            path.unlink()
        elif path.is_dir() and rel not in dirs and not any(path.iterdir()):
            path.rmdir()


def push(local: Path, uri: str, names: list[str]) -> None:
    """Upload the files ``names`` (relative to ``local``) that exist to the same names under ``uri``."""
    fs, root = filesystem(uri)
    for rel in names:
        src = Path(local) / rel
        if not src.is_file():
            continue
        try:
            with fs.open_output_stream(f"{root}/{rel}") as out:
                out.write(src.read_bytes())
        except OSError as exc:
            raise _access_error(uri, uri, exc) from None


def delete(uri: str, names: list[str]) -> None:
    """Remove the files ``names`` under ``uri``; a missing one is no error."""
    import pyarrow.fs as pafs

    fs, root = filesystem(uri)
    for rel in names:
        target = f"{root}/{rel}"
        try:
            if fs.get_file_info(target).type == pafs.FileType.File:
                fs.delete_file(target)
        except OSError as exc:
            raise _access_error(uri, uri, exc) from None


def open_experiment(where: str | Path) -> tuple[Path, str]:
    """``(local folder to read, the location as typed)`` of an experiment: a local path resolved, or a
    URI pulled into its driver folder (:func:`pull`)."""
    text = str(where)
    if is_uri(text):
        uri = text.rstrip("/")
        if not exists(uri):
            raise TuneInputError(f"{uri}: nothing is stored there; check the URI (storage/name)")
        return pull(uri), uri
    folder = Path(text).expanduser().resolve()
    return folder, str(folder)


def copy_tree(uri: str, src: str, dst: str) -> None:
    """Copy every object under ``uri/src`` to the same names under ``uri/dst``, inside the bucket."""
    import pyarrow.fs as pafs

    fs, root = filesystem(uri)
    try:
        for info in fs.get_file_info(pafs.FileSelector(f"{root}/{src}", recursive=True)):
            if info.type == pafs.FileType.File:
                fs.copy_file(info.path, f"{root}/{dst}/{info.path[len(f'{root}/{src}'):].strip('/')}")
    except OSError as exc:
        raise _access_error(uri, uri, exc) from None
