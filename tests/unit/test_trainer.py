"""The training loop on real corpora with tiny ConvTasNets: metrics, exact resume, schedules, guards."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from polsess.config import ConfigError, load_config
from polsess.data import PolSESSDataset, collate
from polsess.evaluate import evaluate
from polsess.metrics import score_batch
from polsess.synth import make_corpus
from polsess.trainer import METRIC_KEYS, Trainer, TrainingDiverged, make_dataset

# A ConvTasNet of a few thousand parameters on 0.25 s crops: an epoch takes well under a second.
TINY: dict[str, Any] = {
    "model.convtasnet.N": 16, "model.convtasnet.B": 8, "model.convtasnet.H": 16,
    "model.convtasnet.X": 2, "model.convtasnet.R": 1,
    "data.batch_size": 4, "data.segment_seconds": 0.25, "data.num_workers": 0,
    "data.train_max_samples": 8, "data.val_max_samples": 4,
    "training.device": "cpu", "training.lr": 3e-3, "training.seed": 7,
}
EXPECTED_KEYS = ("epoch", "train_sisdr", "val_sisdr", "val_sisdri", "best_val_sisdr", "lr")


def tiny_config(root: Path | None, **overrides: Any):
    flat = {**TINY, **{k.replace("__", "."): v for k, v in overrides.items()}}
    if root is not None:
        flat["data.data_root"] = str(root)
    return load_config(overrides=flat, env={})


def tiny_trainer(root: Path, **overrides: Any) -> Trainer:
    return Trainer(tiny_config(root, **overrides), log=lambda _m: None)


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def adam_steps(trainer: Trainer) -> set[int]:
    return {int(trainer.optimizer.state[p]["step"]) for p in trainer.model.parameters()}


# --------------------------------------------------------------------------- one epoch


def test_train_epoch_reports_the_metric_keys_and_counts_epochs(demo_corpus):
    trainer = tiny_trainer(demo_corpus, training__num_epochs=3)
    assert METRIC_KEYS == EXPECTED_KEYS
    assert not trainer.done
    history = []
    while not trainer.done:
        history.append(trainer.train_epoch())
        assert len(history) <= 3, "done never became true"
    assert len(history) == 3 and trainer.epoch == 3
    for i, metrics in enumerate(history, start=1):
        assert tuple(metrics) == EXPECTED_KEYS
        assert metrics["epoch"] == i
        for key in EXPECTED_KEYS[1:]:
            assert isinstance(metrics[key], float), key
            assert math.isfinite(metrics[key]), (key, metrics[key])
        assert metrics["best_val_sisdr"] == max(m["val_sisdr"] for m in history[:i])
    assert history[0]["lr"] == 3e-3
    assert trainer.history == history
    assert trainer.best_val_sisdr == max(m["val_sisdr"] for m in history)


def test_training_improves_val_sisdr(demo_corpus):
    # Not a benchmark: a few epochs on 8 rows at a high LR must move the score, or nothing is learnt.
    trainer = tiny_trainer(demo_corpus, training__num_epochs=4, training__lr=1e-2)
    first = trainer.validate()[0]
    while not trainer.done:
        trainer.train_epoch()
    assert trainer.best_val_sisdr > first + 0.5


# --------------------------------------------------------------------------- exact resume


RESUME_CASES = {
    "plain": {},
    "grad_accumulation": {"training__grad_accumulation_steps": 2, "data__batch_size": 3},
    "curriculum": {
        "training__lr_patience": 0,
        "training__curriculum_learning": [
            {"epoch": 1, "variants": ["SER", "SE"]},
            {"epoch": 2, "variants": ["C", "R", "S"], "lr_scheduler": "start"},
        ],
    },
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_from_checkpoint_is_exact(demo_corpus, tmp_path, case):
    overrides = {"training__num_epochs": 2, **RESUME_CASES[case]}
    straight = tiny_trainer(demo_corpus, **overrides)
    straight_metrics = [straight.train_epoch(), straight.train_epoch()]
    assert straight.done

    first = tiny_trainer(demo_corpus, **overrides)
    assert first.train_epoch() == straight_metrics[0]
    path = first.save(tmp_path / "last.pt")
    assert not (tmp_path / "last.pt.tmp").exists()
    del first

    resumed = Trainer.from_checkpoint(path, log=lambda _m: None)
    assert resumed.epoch == 1 and not resumed.done
    assert resumed.best_val_sisdr == straight_metrics[0]["best_val_sisdr"]
    second = resumed.train_epoch()
    assert second.keys() == straight_metrics[1].keys()
    for key, value in straight_metrics[1].items():
        assert second[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    assert resumed.done
    assert_same_weights(resumed.model, straight.model)
    assert resumed.scheduler.state_dict() == straight.scheduler.state_dict()
    assert adam_steps(resumed) == adam_steps(straight)
    assert resumed.history == [straight_metrics[0], second]  # the checkpoint carries epoch 1's metrics
    if case == "curriculum":
        assert resumed.train_set.allowed_variants == ("C", "R", "S")


def test_resume_keeps_the_nan_guard_count_and_the_last_improvement(demo_corpus, tmp_path):
    """A NaN batch at the end of epoch 1 and one at the start of epoch 2 are two in a row, resumed or not."""
    trainer = tiny_trainer(demo_corpus)
    trainer.train_epoch()
    trainer.bad_batches_in_a_row = 1  # epoch 1 ended on a bad batch
    resumed = Trainer.from_checkpoint(trainer.save(tmp_path / "last.pt"), log=lambda _m: None)
    assert resumed.bad_batches_in_a_row == 1
    assert resumed.improved is trainer.improved is True
    old = torch.load(tmp_path / "last.pt", weights_only=False)
    del old["bad_batches_in_a_row"], old["improved"]  # a checkpoint from before they were saved
    torch.save(old, tmp_path / "old.pt")
    assert Trainer.from_checkpoint(tmp_path / "old.pt", log=lambda _m: None).bad_batches_in_a_row == 0


def test_from_checkpoint_overrides_the_data_root(demo_corpus, tmp_path):
    copy = shutil.copytree(demo_corpus, tmp_path / "moved" / demo_corpus.name)
    trainer = tiny_trainer(demo_corpus)
    path = trainer.save(tmp_path / "ckpt.pt")
    again = Trainer.from_checkpoint(path, overrides={"data.data_root": str(copy)}, log=lambda _m: None)
    assert again.train_set.root == copy
    assert again.cfg.data.data_root == str(copy)
    assert_same_weights(again.model, trainer.model)


# --------------------------------------------------------------------------- curriculum and LR schedule


RESEARCH_CURRICULUM = [
    {"epoch": 1, "variants": ["SER", "SE"]},
    {"epoch": 3, "variants": ["SER", "SR", "SE", "S"]},
    {"epoch": 5, "variants": ["SER", "SR", "ER", "R", "SE", "S", "E", "C"], "lr_scheduler": "start"},
]


def test_curriculum_at_follows_the_research_schedule(demo_corpus):
    trainer = tiny_trainer(demo_corpus, training__curriculum_learning=RESEARCH_CURRICULUM)
    early, middle, late = (e["variants"] for e in RESEARCH_CURRICULUM)
    expected = {1: (early, False), 2: (early, False), 3: (middle, False), 4: (middle, False),
                5: (late, True), 6: (late, True), 50: (late, True)}
    for epoch, (variants, scheduler_on) in expected.items():
        assert trainer.curriculum_at(epoch) == (variants, scheduler_on), epoch


def test_without_curriculum_all_variants_and_scheduler_on(demo_corpus):
    trainer = tiny_trainer(demo_corpus)
    assert trainer.curriculum_at(1) == (None, True)
    trainer.train_epoch()
    assert trainer.train_set.allowed_variants is None


def test_curriculum_drives_train_variants_and_holds_the_scheduler(demo_corpus):
    curriculum = [
        {"epoch": 1, "variants": ["SER", "SE"]},
        {"epoch": 2, "variants": ["C"]},
        {"epoch": 3, "variants": ["R", "S"], "lr_scheduler": "start"},
    ]
    trainer = tiny_trainer(demo_corpus, training__num_epochs=3, training__lr_patience=0, training__lr_factor=0.5,
                           training__validation_variants=["SER", "SE"], training__curriculum_learning=curriculum)
    # A stalled validation: every epoch is worse than this, so a running scheduler would cut the LR at once.
    trainer.scheduler.best = 1e9
    lr0 = trainer.optimizer.param_groups[0]["lr"]
    for entry in curriculum:
        metrics = trainer.train_epoch()
        allowed = tuple(entry["variants"])
        assert trainer.train_set.allowed_variants == allowed
        drawn = {trainer.train_set.variant_for(i) for i in range(len(trainer.train_set))}
        assert drawn <= set(allowed)
        if allowed == ("C",):
            assert drawn == {"C"}
        assert trainer.val_set.allowed_variants == ("SER", "SE")
        assert metrics["lr"] == lr0
        if entry.get("lr_scheduler") != "start":
            assert trainer.scheduler.num_bad_epochs == 0
            assert trainer.optimizer.param_groups[0]["lr"] == lr0
    # Epoch 3 switched the scheduler on; its first (stalled) step already halves the LR.
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(lr0 * 0.5)


def test_plateau_halves_the_lr_after_a_non_improving_epoch(demo_corpus):
    trainer = tiny_trainer(demo_corpus, training__num_epochs=3, training__lr_patience=0, training__lr_factor=0.5)
    first = trainer.train_epoch()  # improves on -inf: no cut
    assert first["lr"] == 3e-3
    assert trainer.optimizer.param_groups[0]["lr"] == 3e-3
    trainer.scheduler.best = 1e9  # the next epoch cannot improve on this
    second = trainer.train_epoch()
    assert second["lr"] == 3e-3  # the LR this epoch trained with
    third = trainer.train_epoch()
    assert third["lr"] == pytest.approx(1.5e-3)


# --------------------------------------------------------------------------- early stopping


def test_early_stopping_ends_a_stalled_run(demo_corpus):
    trainer = tiny_trainer(demo_corpus, training__num_epochs=5, training__early_stopping_patience=1)
    trainer.train_epoch()
    assert trainer.improved and not trainer.done
    trainer.best_val_sisdr = 1e9  # validation stalls from here on
    trainer.train_epoch()
    assert not trainer.improved
    assert trainer.epochs_without_improvement == 1
    assert trainer.done and trainer.epoch == 2


def test_early_stopping_patience_counts_consecutive_epochs(demo_corpus):
    trainer = tiny_trainer(demo_corpus, training__num_epochs=5, training__early_stopping_patience=2)
    trainer.best_val_sisdr = 1e9
    trainer.train_epoch()
    assert not trainer.done
    trainer.best_val_sisdr = -1e9  # the next epoch improves: the count starts over
    trainer.train_epoch()
    assert trainer.epochs_without_improvement == 0 and not trainer.done
    trainer.best_val_sisdr = 1e9
    trainer.train_epoch()
    assert not trainer.done
    trainer.train_epoch()
    assert trainer.done and trainer.epoch == 4


# --------------------------------------------------------------------------- NaN / Inf guard


def test_nan_weights_raise_training_diverged(demo_corpus):
    trainer = tiny_trainer(demo_corpus, training__max_bad_batches=1)
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.fill_(float("nan"))
    with pytest.raises(TrainingDiverged) as info:
        trainer.train_epoch()
    message = str(info.value)
    assert "epoch 1" in message
    assert "training.lr" in message
    assert trainer.epoch == 0


def poison_train_mixes(root: Path, rows: list[int]) -> None:
    """Rewrite these train rows' mix files as float WAVs full of NaN: real, if corrupt, corpus files."""
    frame = pd.read_csv(root / "train" / f"corpus_{root.name}_train_final.csv")
    for row in rows:
        mix_path = root / "train" / "mix" / frame["mixFile"].iloc[row]
        audio, rate = sf.read(mix_path, dtype="float32")
        sf.write(mix_path, np.full_like(audio, np.nan), rate, subtype="FLOAT")


def small_corpus(folder: Path) -> Path:
    return make_corpus(folder / "PolSESS_small", train=4, val=2, test=2, sample_rate=8000, seconds=0.5, seed=1)


@pytest.fixture(scope="module")
def corpus_with_a_nan_row(tmp_path_factory) -> Path:
    root = small_corpus(tmp_path_factory.mktemp("nan"))
    poison_train_mixes(root, [0])
    return root


def test_one_bad_batch_below_the_limit_is_skipped(corpus_with_a_nan_row):
    root = corpus_with_a_nan_row
    trainer = tiny_trainer(root, data__batch_size=1, training__max_bad_batches=2)
    metrics = trainer.train_epoch()
    assert all(math.isfinite(metrics[k]) for k in EXPECTED_KEYS)
    # Three good batches stepped the optimizer; the NaN one did not touch the weights.
    assert adam_steps(trainer) == {3}
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_one_bad_batch_at_the_limit_raises(corpus_with_a_nan_row):
    trainer = tiny_trainer(corpus_with_a_nan_row, data__batch_size=1, training__max_bad_batches=1)
    with pytest.raises(TrainingDiverged, match=r"1 batches in a row in epoch 1.*lower training\.lr"):
        trainer.train_epoch()


@pytest.mark.parametrize("separated", [False, True])
def test_bad_batches_count_only_in_a_row(tmp_path, separated):
    root = small_corpus(tmp_path)
    trainer = tiny_trainer(root, data__batch_size=1, training__max_bad_batches=2)
    # The epoch-1 shuffle order, from the trainer's own (seeded) loader; reads no audio.
    order = list(trainer._loader(trainer.train_set, shuffle=True, epoch=1).sampler)
    poison_train_mixes(root, [order[0], order[2] if separated else order[1]])
    if separated:  # bad, good, bad, good: never two in a row
        metrics = trainer.train_epoch()
        assert math.isfinite(metrics["train_sisdr"])
        assert adam_steps(trainer) == {2}
    else:
        with pytest.raises(TrainingDiverged, match="2 batches in a row in epoch 1"):
            trainer.train_epoch()


def test_an_epoch_with_only_bad_batches_does_not_report_a_score(demo_corpus):
    trainer = tiny_trainer(demo_corpus, training__max_bad_batches=20)  # 2 batches per epoch, both NaN
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.fill_(float("nan"))
    try:
        metrics = trainer.train_epoch()
    except TrainingDiverged:
        return
    assert math.isnan(metrics["train_sisdr"]), metrics


# --------------------------------------------------------------------------- gradient accumulation


@pytest.mark.parametrize("accum,steps", [(1, 4), (2, 2), (3, 2), (4, 1)])
def test_grad_accumulation_steps_the_optimizer_less_often(demo_corpus, accum, steps):
    # 8 rows in batches of 2: 4 batches per epoch; a partial group at the end still steps.
    trainer = tiny_trainer(demo_corpus, data__batch_size=2, training__grad_accumulation_steps=accum)
    trainer.train_epoch()
    assert adam_steps(trainer) == {steps}


def test_accumulated_gradient_equals_the_big_batch_gradient(demo_corpus):
    # 4 rows: one batch of 4, or two batches of 2 accumulated; either way one optimizer step on the same
    # items. Adam's first moment after one step is (1 - beta1) * gradient, so it exposes the gradient.
    common = {"data__train_max_samples": 4, "training__grad_clip_norm": None}
    big = tiny_trainer(demo_corpus, data__batch_size=4, **common)
    accumulated = tiny_trainer(demo_corpus, data__batch_size=2, training__grad_accumulation_steps=2, **common)
    big_metrics, acc_metrics = big.train_epoch(), accumulated.train_epoch()
    assert adam_steps(big) == adam_steps(accumulated) == {1}
    assert acc_metrics["train_sisdr"] == pytest.approx(big_metrics["train_sisdr"], abs=1e-5)
    for p_big, p_acc in zip(big.model.parameters(), accumulated.model.parameters(), strict=True):
        torch.testing.assert_close(accumulated.optimizer.state[p_acc]["exp_avg"],
                                   big.optimizer.state[p_big]["exp_avg"], rtol=1e-4, atol=1e-9)


# --------------------------------------------------------------------------- devices, tasks


def test_amp_is_off_on_the_cpu(demo_corpus):
    trainer = tiny_trainer(demo_corpus, training__use_amp=True, training__device="cpu")
    assert trainer.device.type == "cpu"
    assert trainer.amp_dtype is None
    assert not trainer.scaler.is_enabled()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback of a GPU-less machine")
def test_cuda_request_without_gpu_runs_on_cpu_without_amp(demo_corpus):
    trainer = Trainer(tiny_config(demo_corpus, training__use_amp=True, training__device="cuda"),
                      log=lambda _m: None)
    assert trainer.device.type == "cpu"
    assert trainer.amp_dtype is None
    assert math.isfinite(trainer.train_epoch()["val_sisdr"])


@pytest.mark.parametrize("task,sources", [("ES", 1), ("EB", 1), ("SB", 2)])
def test_each_task_trains_with_its_number_of_outputs(demo_corpus, task, sources):
    trainer = tiny_trainer(demo_corpus, data__task=task)
    metrics = trainer.train_epoch()
    assert all(math.isfinite(metrics[k]) for k in EXPECTED_KEYS)
    batch = next(iter(DataLoader(trainer.val_set, batch_size=2, collate_fn=collate)))
    expected_clean = (2, sources, 2000) if sources == 2 else (2, 2000)
    assert tuple(batch["clean"].shape) == expected_clean
    with torch.no_grad():
        out = trainer.model(batch["mix"].unsqueeze(1))
    assert tuple(out.shape) == (2, sources, 2000)


def test_sb_score_is_permutation_invariant(demo_corpus):
    trainer = tiny_trainer(demo_corpus, data__task="SB")
    trainer.train_epoch()
    before = trainer.validate()
    # Swap the two sources the mask generator emits: the same separation, the other way round.
    # (torchaudio's mask generator ends in a conv with num_sources * N channels, source-major.)
    conv = trainer.model.mask_generator.output_conv
    with torch.no_grad():
        n = conv.out_channels // 2
        conv.weight.copy_(torch.cat([conv.weight[n:], conv.weight[:n]]))
        conv.bias.copy_(torch.cat([conv.bias[n:], conv.bias[:n]]))
    after = trainer.validate()
    assert after == pytest.approx(before, abs=1e-9)


# --------------------------------------------------------------------------- evaluation


def test_evaluate_scores_every_variant_on_the_rows_it_fits(demo_corpus):
    trainer = tiny_trainer(demo_corpus)
    trainer.train_epoch()
    result = evaluate(trainer, subset="test")
    assert result["subset"] == "test" and result["task"] == "ES"
    ds = PolSESSDataset(demo_corpus, subset="test", task="ES")
    assert set(result["variants"]) == {"SER", "SR", "ER", "R", "SE", "S", "E", "C"}
    for variant, row in result["variants"].items():
        assert row["n"] == len(ds.indices_for_variant(variant)), variant
        assert math.isfinite(row["si_sdr"])
        assert (row["si_sdri"] is None) if variant == "C" else math.isfinite(row["si_sdri"]), variant
    assert math.isfinite(result["overall"]["si_sdri"])  # the C rows (input = target) are left out of it
    assert result["variants"]["C"]["n"] == len(ds)
    assert result["variants"]["SER"]["n"] + result["variants"]["SE"]["n"] == len(ds)
    assert result["overall"]["n"] == len(ds)

    # Recompute one variant by hand on whole files: same numbers.
    ds.fixed_variant = "R"
    rows = ds.indices_for_variant("R")
    scores = []
    trainer.model.eval()
    with torch.no_grad():
        for i in rows:
            item = ds[i]
            est = trainer.model(item["mix"][None, None])
            assert est.shape[-1] == 8000  # whole 1 s files, no crop
            scores.append(score_batch(est, item["clean"][None], item["mix"][None])[0].item())
    assert result["variants"]["R"]["si_sdr"] == pytest.approx(float(np.mean(scores)), abs=1e-4)


def test_evaluate_max_samples_limits_the_rows(demo_corpus):
    trainer = tiny_trainer(demo_corpus)
    result = evaluate(trainer, subset="val", max_samples=4)
    assert result["overall"]["n"] == 4
    assert result["variants"]["C"]["n"] == 4
    assert result["variants"]["SER"]["n"] + result["variants"]["SE"]["n"] == 4


def test_make_dataset_without_a_data_root_names_the_key():
    cfg = tiny_config(None)
    assert cfg.data.data_root is None
    with pytest.raises(ConfigError, match=r"data\.data_root"):
        make_dataset(cfg, "train", None, None)
