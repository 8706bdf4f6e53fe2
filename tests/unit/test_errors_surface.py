"""Errors that used to vanish inside a broad ``except Exception`` now surface; the cases each except
means still read as before. Real Ray objects, real files, a real (unreachable) S3 endpoint; no Ray start.
"""

from __future__ import annotations

import os
import pickle
import socket
import sys
import warnings
from pathlib import Path

import pyarrow.fs
import pytest
from ray import tune
from ray.train._internal.storage import StorageContext
from ray.tune.experiment import Trial

from tune_app.errors import TuneInputError
from tune_app.experiment.study import has_password, redact
from tune_app.ext.trial_files import experiment_results, results_at, results_under, trial_results
from tune_app.tune.trainable import _marker, recorded_error, trial_resources


@pytest.fixture(autouse=True)
def _quiet_outside_a_session():
    with warnings.catch_warnings():  # Ray warns that get_trial_resources/get_trial_dir are session-only
        warnings.simplefilter("ignore", UserWarning)
        yield


# --------------------------------------------------------------------------- trainable.py


def test_outside_a_tune_session_a_trial_gets_every_cpu_and_no_marker():
    assert trial_resources() == (float(os.cpu_count() or 1), 0.0)
    assert _marker() is None


@pytest.mark.parametrize("method", ["get_trial_resources", "get_trial_dir"])
def test_a_changed_ray_api_is_raised_not_read_as_every_cpu_and_no_gpu(monkeypatch, method):
    """Before: any error in Ray's context (here the method renamed away) gave os.cpu_count() threads and 0 GPUs."""
    for cls in tune.TuneContext.__mro__:  # TuneContext and its base, TrainContext, both define them
        if method in vars(cls):
            monkeypatch.delattr(cls, method)
    with pytest.raises(AttributeError, match=method):
        trial_resources() if method == "get_trial_resources" else _marker()


class _Gone(Exception):
    pass


class _Strict(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")


def test_an_unreadable_error_record_means_train_as_usual(tmp_path, monkeypatch):
    marker = tmp_path / "not_retried.pkl"
    assert recorded_error(marker) is None  # no record
    marker.write_bytes(pickle.dumps(ValueError("bad audio")))
    assert str(recorded_error(marker)) == "bad audio"
    marker.write_bytes(pickle.dumps(ValueError("bad audio"))[:-3])  # cut by a kill
    assert recorded_error(marker) is None
    marker.write_bytes(pickle.dumps(_Strict(1, 2)))  # re-created with one argument: TypeError
    assert recorded_error(marker) is None
    marker.write_bytes(pickle.dumps(_Gone("x")))
    monkeypatch.delattr(sys.modules[__name__], "_Gone")  # its class no longer exists: AttributeError
    assert recorded_error(marker) is None


def test_an_error_record_that_cannot_be_read_at_all_is_raised(tmp_path):
    """Before: an OSError reading the record (here: a folder in its place) read as "no record"."""
    (tmp_path / "not_retried.pkl").mkdir()
    with pytest.raises(IsADirectoryError):
        recorded_error(tmp_path / "not_retried.pkl")


# --------------------------------------------------------------------------- ext/trial_files.py


def _unreachable_s3() -> pyarrow.fs.S3FileSystem:
    """A bucket whose endpoint refuses connections (a port just freed), one attempt, no waiting."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return pyarrow.fs.S3FileSystem(access_key="x", secret_key="y", region="us-east-1", scheme="http",
                                   endpoint_override=f"127.0.0.1:{port}", connect_timeout=1, request_timeout=1,
                                   retry_strategy=pyarrow.fs.AwsStandardS3RetryStrategy(max_attempts=1))


def test_results_not_there_yet_read_as_none(tmp_path):
    local = pyarrow.fs.LocalFileSystem()
    assert results_at(local, str(tmp_path / "trial_a")) == []
    assert results_under(local, str(tmp_path / "not-created-yet")) == {}
    (tmp_path / "exp" / "trial_a").mkdir(parents=True)
    (tmp_path / "exp" / "trial_a" / "result.json").write_text('{"epoch": 1}\n{"epoch": 2, "val')  # cut last line
    (tmp_path / "exp" / "trial_b").mkdir()
    assert results_under(local, str(tmp_path / "exp")) == {"a": [{"epoch": 1}], "b": []}


def test_a_bucket_that_cannot_be_read_is_raised_not_read_as_no_results():
    """Before: any S3 error (unreachable, refused credentials) read as "no results", and the ASHA replay
    rebuilt other rungs than the search had, silently."""
    s3 = _unreachable_s3()
    with pytest.raises(OSError, match="NETWORK_CONNECTION") as info:
        results_at(s3, "bucket/exp/trial_a")
    assert not isinstance(info.value, FileNotFoundError)
    with pytest.raises(OSError, match="NETWORK_CONNECTION"):
        results_under(s3, "bucket/exp")


def test_a_result_file_that_cannot_be_read_is_raised(tmp_path):
    (tmp_path / "trial_a" / "result.json").mkdir(parents=True)  # not a file: pyarrow's OSError
    with pytest.raises(OSError, match="is a directory"):
        results_at(pyarrow.fs.LocalFileSystem(), str(tmp_path / "trial_a"))


def test_a_live_trial_reads_its_results_through_tunes_storage(tmp_path):
    storage = StorageContext(storage_path=str(tmp_path), experiment_dir_name="exp")
    trial = Trial("x", stub=True, trial_id="a", config={}, storage=storage)
    assert trial_results(trial) == []  # a new trial: Tune has not named its folder yet
    assert experiment_results(trial) == {}
    trial.storage.trial_dir_name = "trial_a"
    (tmp_path / "exp" / "trial_a").mkdir()
    assert trial_results(trial) == []
    (tmp_path / "exp" / "trial_a" / "result.json").write_text('{"epoch": 1}\n')
    assert trial_results(trial) == [{"epoch": 1}]
    assert experiment_results(trial) == {"a": [{"epoch": 1}]}
    stub = Trial("x", stub=True, trial_id="b", config={})  # no storage at all: a fault of the caller's
    with pytest.raises(AttributeError):
        experiment_results(stub)


# --------------------------------------------------------------------------- experiment/study.py


@pytest.mark.parametrize("url", ["postgresql://me:s3cret@db:port/tune", "postgresql://me:s3cret@[::1/tune",
                                 "not a url"])
def test_a_storage_url_that_does_not_parse_is_refused_not_said_to_hold_no_password(url):
    """Before: has_password said False for it, so a --dry-run or resume let it through."""
    with pytest.raises(TuneInputError, match="not a database URL") as info:
        has_password(url)
    assert "s3cret" not in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith(f"--optuna-storage {redact(url)}:")


def test_urls_that_parse_still_say_whether_they_hold_a_password():
    assert has_password("postgresql://me:s3cret@db/tune")
    assert has_password("postgresql://me@db/tune?password=s3cret")
    assert not has_password("postgresql://me@db/tune")
    assert not has_password(f"sqlite:///{Path('x.db').resolve()}")
    assert redact("postgresql://me:s3cret@db:port/tune") == "postgresql://***@db:port/tune"
