"""training.compile: on, for real (torch.compile's CPU backend): the compiled trainer trains the same
model as the eager one within float tolerance, and its checkpoint is an eager one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from polsess.config import load_config
from polsess.fast_conv import ShiftedDepthwiseConv1d
from polsess.trainer import Trainer, load_checkpoint

TINY = {"model.convtasnet.N": 16, "model.convtasnet.B": 8, "model.convtasnet.H": 16, "model.convtasnet.X": 2,
        "model.convtasnet.R": 1, "data.batch_size": 4, "data.segment_seconds": 0.25, "data.num_workers": 0,
        "training.num_epochs": 2, "training.device": "cpu"}


def test_the_compiled_trainer_matches_the_eager_one(demo_corpus: Path, tmp_path: Path):
    runs = {}
    for choice in ("off", "on"):
        trainer = Trainer(load_config(None, {**TINY, "data.data_root": str(demo_corpus), "training.compile": choice}),
                          log=lambda _line: None)
        history = [trainer.train_epoch() for _ in range(2)]
        runs[choice] = (trainer, history)
    eager, compiled = runs["off"][0], runs["on"][0]
    assert eager.step_kind == "eager"
    if compiled.step_kind.startswith("eager (compile failed"):
        pytest.skip(f"torch.compile does not work on this machine: {compiled.step_kind}")
    assert compiled.step_kind == "compiled, 2 depthwise convs as shifted multiply-adds"
    assert any(isinstance(m, ShiftedDepthwiseConv1d) for m in compiled.model.modules())
    for a, b in zip(runs["off"][1], runs["on"][1], strict=True):
        for key in ("train_sisdr", "val_sisdr", "val_sisdri"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-4), key
    for (name, p), q in zip(eager.model.state_dict().items(), compiled.model.state_dict().values(), strict=True):
        torch.testing.assert_close(q, p, rtol=1e-3, atol=1e-4, msg=name)

    path = compiled.save(tmp_path / "last.pt")  # an eager checkpoint: no _orig_mod. prefixes
    assert list(load_checkpoint(path)["model"]) == list(eager.model.state_dict())
    again = Trainer.from_checkpoint(path, {"training.compile": "off"}, log=lambda _line: None)
    assert again.epoch == 2 and again.validate() == pytest.approx(compiled.validate(), abs=1e-4)
