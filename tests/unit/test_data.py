"""The loader against real files: every MM-IPC rule is pinned by arithmetic on the component WAVs."""

from __future__ import annotations

import itertools
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from helpers import REPO
from torch.utils.data import DataLoader

from polsess.data import PolSESSDataError, PolSESSDataset, collate, removed_components

# The layout and the rules of the PolSESS corpus format (the research project's own spec, shared with this
# project but not shipped in it), written out here by hand rather than taken from the code under test.
FILES = {
    "mix": ("mix", "mixFile"), "speaker1": ("clean", "speaker1File"), "speaker2": ("clean", "speaker2File"),
    "scene": ("scene", "sceneFile"), "event": ("event", "eventFile"),
    "sp1_reverb": ("sp1_reverb", "reverbForSpeaker1"), "sp2_reverb": ("sp2_reverb", "reverbForSpeaker2"),
    "ev_reverb": ("ev_reverb", "reverbForEvent"),
}
INDOOR = ("SER", "SR", "ER", "R", "C")
OUTDOOR = ("SE", "S", "E", "C")
# What the input loses, for EB and SB; ES also loses speaker2 and, indoor, sp2_reverb.
REMOVED = {
    ("SER", True): set(),
    ("SR", True): {"event", "ev_reverb"},
    ("ER", True): {"scene"},
    ("R", True): {"scene", "event", "ev_reverb"},
    ("C", True): {"scene", "event", "ev_reverb", "sp1_reverb", "sp2_reverb"},
    ("SE", False): set(),
    ("S", False): {"event"},
    ("E", False): {"scene"},
    ("C", False): {"scene", "event"},
}
TASKS = ("ES", "EB", "SB")
LSB = 1 / 32768


def expected_removed(variant: str, task: str, indoor: bool) -> set[str]:
    out = set(REMOVED[(variant, indoor)])
    if task == "ES":
        out |= {"speaker2", "sp2_reverb"} if indoor else {"speaker2"}
    return out


def metadata(root: Path, subset: str) -> pd.DataFrame:
    return pd.read_csv(root / subset / f"corpus_{root.name}_{subset}_final.csv")


def component(root: Path, subset: str, row: pd.Series, comp: str) -> np.ndarray:
    folder, column = FILES[comp]
    return sf.read(root / subset / folder / row[column], dtype="float32")[0]


def row_files(root: Path, subset: str, row: pd.Series) -> dict[str, Path]:
    return {c: root / subset / folder / row[col] for c, (folder, col) in FILES.items() if isinstance(row[col], str)}


def is_indoor(row: pd.Series) -> bool:
    return isinstance(row["reverbForSpeaker1"], str)


def first_rows(root: Path, subset: str) -> dict[bool, int]:
    df = metadata(root, subset)
    return {kind: next(i for i, r in df.iterrows() if is_indoor(r) == kind) for kind in (True, False)}


@pytest.fixture
def corpus_copy(demo_corpus: Path, tmp_path: Path) -> Path:
    """A private copy of the session corpus that a test may break."""
    return Path(shutil.copytree(demo_corpus, tmp_path / demo_corpus.name))


# --------------------------------------------------------------------------- the MM-IPC rules


@pytest.mark.parametrize("task", TASKS)
def test_every_variant_follows_the_rules(demo_corpus: Path, task: str) -> None:
    df = metadata(demo_corpus, "val")
    ds = PolSESSDataset(demo_corpus, "val", task)
    assert {is_indoor(r) for _, r in df.iterrows()} == {True, False}
    for i, row in df.iterrows():
        indoor = is_indoor(row)
        parts = {c: component(demo_corpus, "val", row, c) for c in row_files(demo_corpus, "val", row)}
        for variant in INDOOR if indoor else OUTDOOR:
            removed = expected_removed(variant, task, indoor)
            assert set(removed_components(variant, task, indoor)) == removed
            ds.fixed_variant = variant
            item = ds[i]
            assert item["background_complexity"] == variant
            assert item["mix"].dtype == torch.float32 and item["clean"].dtype == torch.float32
            want = parts["mix"].copy()
            for comp in removed:
                want -= parts[comp]
            np.testing.assert_allclose(item["mix"].numpy(), want, atol=1e-6, err_msg=f"{variant} {task} {indoor}")
            # The same input, built up from what stays instead of down from the mix.
            kept = sum(p for c, p in parts.items() if c != "mix" and c not in removed)
            assert np.abs(item["mix"].numpy() - kept).max() <= 8 * LSB
            if task == "ES":
                np.testing.assert_array_equal(item["clean"].numpy(), parts["speaker1"])
            elif task == "EB":
                np.testing.assert_allclose(item["clean"].numpy(), parts["speaker1"] + parts["speaker2"], atol=1e-7)
            else:
                assert item["clean"].shape == (2, len(parts["mix"]))
                np.testing.assert_array_equal(item["clean"][0].numpy(), parts["speaker1"])
                np.testing.assert_array_equal(item["clean"][1].numpy(), parts["speaker2"])
            files = ds.files_for(i, variant)
            targets = {"speaker1"} if task == "ES" else {"speaker1", "speaker2"}
            assert set(files) == {"mix"} | removed | targets
            assert all(Path(p) == row_files(demo_corpus, "val", row)[c] for c, p in files.items())


def test_unprocessed_mix_is_read_as_soundfile_reads_it(demo_corpus: Path) -> None:
    ds = PolSESSDataset(demo_corpus, "val", "EB")
    df = metadata(demo_corpus, "val")
    for indoor, i in first_rows(demo_corpus, "val").items():
        ds.fixed_variant = "SER" if indoor else "SE"
        np.testing.assert_array_equal(ds[i]["mix"].numpy(), component(demo_corpus, "val", df.iloc[i], "mix"))


def test_item_reads_only_the_files_it_needs(demo_corpus: Path, corpus_copy: Path) -> None:
    df = metadata(corpus_copy, "val")
    for task in TASKS:
        ds = PolSESSDataset(corpus_copy, "val", task)
        for indoor, i in first_rows(corpus_copy, "val").items():
            every = row_files(corpus_copy, "val", df.iloc[i])
            for variant in INDOOR if indoor else OUTDOOR:
                needed = {Path(p) for p in ds.files_for(i, variant).values()}
                spare = [p for p in every.values() if p not in needed]
                for p in spare:
                    p.unlink()
                ds.fixed_variant = variant
                ds[i]  # must not open any of the removed files
                for p in spare:
                    shutil.copy(demo_corpus / p.relative_to(corpus_copy), p)
    # The cheapest case really is small: EB on the full background needs the mix and the speakers only.
    ds = PolSESSDataset(corpus_copy, "val", "EB")
    assert set(ds.files_for(first_rows(corpus_copy, "val")[True], "SER")) == {"mix", "speaker1", "speaker2"}


# --------------------------------------------------------------------------- which variant, when


def test_val_and_test_variant_is_random_Random_index_choice(demo_corpus: Path) -> None:
    for subset in ("val", "test"):
        df = metadata(demo_corpus, subset)
        for allowed in (None, ["C", "SER", "SE", "R"]):
            ds = PolSESSDataset(demo_corpus, subset, "SB", allowed_variants=allowed)
            seen = []
            for epoch in (0, 3):
                ds.set_epoch(epoch)
                for i, row in df.iterrows():
                    fits = INDOOR if is_indoor(row) else OUTDOOR
                    compatible = [v for v in (allowed or fits) if v in fits]
                    want = random.Random(i).choice(compatible)
                    assert ds.variant_for(i) == want
                    seen.append(ds[i]["background_complexity"])
                    assert seen[-1] == want
            assert seen[: len(df)] == seen[len(df):]  # every epoch sees the same inputs


def test_train_variant_and_crop_depend_on_seed_epoch_index_only(demo_corpus: Path) -> None:
    a = PolSESSDataset(demo_corpus, "train", "ES", seed=5, segment_samples=3000)
    b = PolSESSDataset(demo_corpus, "train", "ES", seed=5, segment_samples=3000)
    per_epoch = []
    for epoch in (0, 1, 2):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        order = list(range(len(a)))
        random.Random(epoch).shuffle(order)  # access order must not matter
        variants = [a.variant_for(i) for i in range(len(a))]
        shuffled = {i: b.variant_for(i) for i in order}
        assert variants == [shuffled[i] for i in range(len(b))]
        for i in order[:4]:
            x, y = a[i], b[i]
            assert x["background_complexity"] == y["background_complexity"] == variants[i]
            assert torch.equal(x["mix"], y["mix"]) and torch.equal(x["clean"], y["clean"])
        per_epoch.append(variants)
    assert per_epoch[0] != per_epoch[1] or per_epoch[1] != per_epoch[2]  # redrawn each epoch
    other = PolSESSDataset(demo_corpus, "train", "ES", seed=6)
    assert [other.variant_for(i) for i in range(len(other))] != per_epoch[0]
    # Stable across processes: string seeds go through SHA-512, not the salted hash().
    a.set_epoch(0)
    code = ("from polsess.data import PolSESSDataset as D; import sys; "
            "d = D(sys.argv[1], 'train', 'ES', seed=5); print(' '.join(d.variant_for(i) for i in range(len(d))))")
    out = subprocess.run([sys.executable, "-c", code, str(demo_corpus)], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123", "PATH": ""},
                         cwd=REPO).stdout.split()
    assert out == per_epoch[0]


def test_dataloader_workers_do_not_change_items(demo_corpus: Path) -> None:
    ds = PolSESSDataset(demo_corpus, "train", "SB", seed=3, segment_samples=2000)
    ds.set_epoch(4)
    batches = []
    for workers in (0, 2):
        loader = DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=collate)
        batches.append(list(loader))
    for x, y in zip(*batches, strict=True):
        assert torch.equal(x["mix"], y["mix"]) and torch.equal(x["clean"], y["clean"])
        assert x["background_complexity"] == y["background_complexity"]


def test_allowed_variants_setter(demo_corpus: Path) -> None:
    ds = PolSESSDataset(demo_corpus, "train", "EB")
    assert ds.allowed_variants is None
    ds.allowed_variants = ["SR", "S"]
    assert ds.allowed_variants == ("SR", "S")
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            assert ds.variant_for(i) == ("SR" if ds.indoor[i] else "S")
    ds.allowed_variants = ["C"]
    assert {ds[i]["background_complexity"] for i in range(len(ds))} == {"C"}
    ds.allowed_variants = None
    assert len({ds.variant_for(i) for i in range(len(ds))}) > 2
    with pytest.raises(ValueError, match="XYZ"):
        ds.allowed_variants = ["SER", "XYZ"]
    with pytest.raises(ValueError, match="empty"):
        ds.allowed_variants = []
    with pytest.raises(ValueError, match="list"):
        ds.allowed_variants = "SER"
    assert ds.allowed_variants is None  # a rejected value leaves the old one


def _single_kind_lists() -> list[tuple[str, ...]]:
    """Every non-empty variant list that fits only one kind of row (no C): 15 indoor, 7 outdoor."""
    out = []
    for variants in (INDOOR[:-1], OUTDOOR[:-1]):
        for k in range(1, len(variants) + 1):
            out += list(itertools.combinations(variants, k))
    return out


@pytest.mark.parametrize("allowed", _single_kind_lists(), ids="-".join)
def test_a_single_kind_variant_list_keeps_only_those_rows_as_the_research_loader_does(demo_corpus, allowed):
    indoor_list = allowed[0] in INDOOR
    df = metadata(demo_corpus, "val")
    # The research loader: filter the metadata, renumber, then random.Random(index) over the kept rows.
    kept = df[[is_indoor(r) == indoor_list for _, r in df.iterrows()]].reset_index(drop=True)
    ds = PolSESSDataset(demo_corpus, "val", "EB", allowed_variants=list(allowed))
    assert 0 < len(ds) == len(kept) < len(df)
    pd.testing.assert_frame_equal(ds.metadata, kept)
    assert ds.indoor == [indoor_list] * len(kept)
    for i, row in kept.iterrows():
        variant = random.Random(i).choice(list(allowed))  # every listed variant fits a kept row
        assert ds.variant_for(i) == variant
        item = ds[i]
        parts = {c: component(demo_corpus, "val", row, c) for c in row_files(demo_corpus, "val", row)}
        want = parts["mix"] - sum((parts[c] for c in expected_removed(variant, "EB", indoor_list)),
                                  np.zeros_like(parts["mix"]))
        assert item["background_complexity"] == variant
        np.testing.assert_allclose(item["mix"].numpy(), want, atol=1e-6)


def test_lists_that_fit_both_kinds_keep_every_row_and_the_view_follows_the_setter(demo_corpus: Path) -> None:
    df = metadata(demo_corpus, "train")
    ds = PolSESSDataset(demo_corpus, "train", "ES")
    for both in (["C"], ["SER", "SE"], ["R", "S", "C"]):
        ds.allowed_variants = both
        assert len(ds) == len(df)
    ds.allowed_variants = ["SER"]  # a curriculum's indoor-only first stage
    assert len(ds) == sum(is_indoor(r) for _, r in df.iterrows())
    ds.allowed_variants = None  # and its later stage with every row again
    assert len(ds) == len(df) and ds.metadata.equals(df)


def test_a_variant_list_that_fits_no_row_is_an_error_naming_the_list(corpus_copy: Path) -> None:
    csv = corpus_copy / "val" / f"corpus_{corpus_copy.name}_val_final.csv"
    df = pd.read_csv(csv)
    df[[not is_indoor(r) for _, r in df.iterrows()]].to_csv(csv, index=False)  # outdoor rows only
    with pytest.raises(PolSESSDataError, match=r"allowed_variants \['SER', 'SR'\] fit only indoor rows") as info:
        PolSESSDataset(corpus_copy, "val", "ES", allowed_variants=["SER", "SR"])
    assert str(csv) in str(info.value)
    ds = PolSESSDataset(corpus_copy, "val", "ES", allowed_variants=["SE"])
    assert len(ds) == len(pd.read_csv(csv))


def test_fixed_variant_and_indices_for_variant(demo_corpus: Path) -> None:
    ds = PolSESSDataset(demo_corpus, "test", "SB", allowed_variants=["SER", "SE"])
    indoor = [i for i, r in metadata(demo_corpus, "test").iterrows() if is_indoor(r)]
    outdoor = [i for i in range(len(ds)) if i not in indoor]
    assert ds.indoor == [i in indoor for i in range(len(ds))]
    for v in INDOOR[:-1]:
        assert ds.indices_for_variant(v) == indoor
    for v in OUTDOOR[:-1]:
        assert ds.indices_for_variant(v) == outdoor
    assert ds.indices_for_variant("C") == list(range(len(ds)))
    with pytest.raises(ValueError, match="Q"):
        ds.indices_for_variant("Q")
    ds.fixed_variant = "R"  # not among the allowed variants: fixed wins
    assert {ds[i]["background_complexity"] for i in indoor} == {"R"}
    with pytest.raises(PolSESSDataError, match="indices_for_variant") as info:
        ds[outdoor[0]]
    assert metadata(demo_corpus, "test")["mixFile"][outdoor[0]] in str(info.value)
    with pytest.raises(ValueError, match="X"):
        ds.fixed_variant = "X"
    ds.fixed_variant = None
    assert {ds[i]["background_complexity"] for i in range(len(ds))} <= {"SER", "SE"}


# --------------------------------------------------------------------------- segments and batches


def _offsets(crop: np.ndarray, full: np.ndarray) -> list[int]:
    windows = np.lib.stride_tricks.sliding_window_view(full, crop.size)
    return np.flatnonzero((windows == crop).all(axis=1)).tolist()


def test_segments_random_in_train_fixed_in_val_padded_when_short(demo_corpus: Path) -> None:
    seg = 2000
    train = PolSESSDataset(demo_corpus, "train", "EB", segment_samples=seg)
    df = metadata(demo_corpus, "train")
    offsets = []
    for epoch in (0, 1):
        train.set_epoch(epoch)
        for i in range(6):
            train.fixed_variant = "SER" if train.indoor[i] else "SE"  # input = mix file, no subtraction
            item = train[i]
            assert item["mix"].shape == (seg,) and item["clean"].shape == (seg,)
            found = _offsets(item["mix"].numpy(), component(demo_corpus, "train", df.iloc[i], "mix"))
            assert len(found) == 1
            offsets.append(found[0])
            s1 = component(demo_corpus, "train", df.iloc[i], "speaker1")
            s2 = component(demo_corpus, "train", df.iloc[i], "speaker2")
            np.testing.assert_allclose(item["clean"].numpy(), (s1 + s2)[found[0]:found[0] + seg], atol=1e-7)
    assert len(set(offsets)) > 6  # random, and redrawn each epoch

    val = PolSESSDataset(demo_corpus, "val", "SB", segment_samples=seg)
    vdf = metadata(demo_corpus, "val")
    for i in range(len(val)):
        np.testing.assert_array_equal(val[i]["clean"][0].numpy(),
                                      component(demo_corpus, "val", vdf.iloc[i], "speaker1")[:seg])

    long = PolSESSDataset(demo_corpus, "val", "SB", segment_samples=10_000)
    item = long[0]
    assert item["mix"].shape == (10_000,) and item["clean"].shape == (2, 10_000)
    assert not item["mix"][8000:].any() and not item["clean"][:, 8000:].any()
    np.testing.assert_array_equal(item["clean"][1, :8000].numpy(),
                                  component(demo_corpus, "val", vdf.iloc[0], "speaker2"))


@pytest.mark.parametrize(("task", "clean_shape"), [("ES", (4, 8000)), ("EB", (4, 8000)), ("SB", (4, 2, 8000))])
def test_collate_shapes(demo_corpus: Path, task: str, clean_shape: tuple[int, ...]) -> None:
    ds = PolSESSDataset(demo_corpus, "train", task)
    batch = next(iter(DataLoader(ds, batch_size=4, collate_fn=collate)))
    assert batch["mix"].shape == (4, 8000) and batch["clean"].shape == clean_shape
    assert batch["background_complexity"] == [ds.variant_for(i) for i in range(4)]


def test_collate_crops_to_the_shortest_item() -> None:
    items = [{"mix": torch.ones(n), "clean": torch.ones(2, n), "background_complexity": v}
             for n, v in ((500, "C"), (300, "SER"), (400, "S"))]
    batch = collate(items)
    assert batch["mix"].shape == (3, 300) and batch["clean"].shape == (3, 2, 300)
    assert batch["background_complexity"] == ["C", "SER", "S"]


def test_max_samples_and_sample_rate(demo_corpus: Path) -> None:
    ds = PolSESSDataset(demo_corpus, "train", "ES", max_samples=5)
    assert len(ds) == 5 and list(ds.metadata.index) == [0, 1, 2, 3, 4]
    assert ds.metadata["mixFile"].tolist() == metadata(demo_corpus, "train")["mixFile"][:5].tolist()
    assert ds.sample_rate == 8000
    assert len(PolSESSDataset(demo_corpus, "val", max_samples=100)) == 8
    assert ds.check_files() == sum(len(row_files(demo_corpus, "train", r)) for _, r in ds.metadata.iterrows())


# --------------------------------------------------------------------------- errors name the file


def test_missing_root_subset_and_csv(tmp_path: Path, corpus_copy: Path) -> None:
    with pytest.raises(PolSESSDataError, match="nowhere"):
        PolSESSDataset(tmp_path / "nowhere")
    shutil.rmtree(corpus_copy / "test")
    with pytest.raises(PolSESSDataError, match=r"PolSESS_test/test"):
        PolSESSDataset(corpus_copy, "test")
    csv = corpus_copy / "val" / "corpus_PolSESS_test_val_final.csv"
    csv.unlink()
    with pytest.raises(PolSESSDataError, match=re.escape(str(csv))):
        PolSESSDataset(corpus_copy, "val")
    renamed = corpus_copy.rename(corpus_copy.parent / "PolSESS_other")
    with pytest.raises(PolSESSDataError, match=re.escape("corpus_PolSESS_other_train_final.csv")):
        PolSESSDataset(renamed, "train")  # the CSV is named after the root folder
    with pytest.raises(ValueError, match="XX"):
        PolSESSDataset(renamed, "train", task="XX")
    with pytest.raises(ValueError, match="dev"):
        PolSESSDataset(renamed, "dev")


def test_missing_column(corpus_copy: Path) -> None:
    csv = corpus_copy / "train" / "corpus_PolSESS_test_train_final.csv"
    pd.read_csv(csv).drop(columns=["reverbForEvent"]).to_csv(csv, index=False)
    with pytest.raises(PolSESSDataError, match="reverbForEvent") as info:
        PolSESSDataset(corpus_copy, "train")
    assert str(csv) in str(info.value)


def test_missing_wav(corpus_copy: Path) -> None:
    df = metadata(corpus_copy, "val")
    i = first_rows(corpus_copy, "val")[True]
    scene = corpus_copy / "val" / "scene" / df["sceneFile"][i]
    scene.unlink()
    ds = PolSESSDataset(corpus_copy, "val", "EB")  # WAVs are checked when read, not on construction
    with pytest.raises(PolSESSDataError, match=re.escape(str(scene))):
        ds.check_files()
    ds.fixed_variant = "SER"
    ds[i]  # keeps the scene: does not need the file
    ds.fixed_variant = "R"
    with pytest.raises(PolSESSDataError, match=re.escape(str(scene))):
        ds[i]


def test_check_files_reads_every_header_before_a_trial_does(corpus_copy: Path) -> None:
    """A WAV cut to 10 bytes or of another rate fails the pre-start check, not a trial three times."""
    df = metadata(corpus_copy, "train")
    cut = corpus_copy / "train" / "mix" / df["mixFile"][1]
    cut.write_bytes(cut.read_bytes()[:10])
    other_rate = corpus_copy / "train" / "clean" / df["speaker1File"][2]
    data, rate = sf.read(other_rate)
    sf.write(other_rate, data, rate * 2)
    ds = PolSESSDataset(corpus_copy, "train", "ES")
    with pytest.raises(PolSESSDataError) as info:
        ds.check_files()
    text = str(info.value)
    assert f"{cut}: unreadable audio header" in text
    assert f"{other_rate}: 1 channel(s) at {rate * 2} Hz; the corpus is mono at {rate} Hz" in text
    assert ds.check_files(headers=False) > 0  # existence alone passes


def test_check_files_records_the_shortest_mix(demo_corpus: Path) -> None:
    ds = PolSESSDataset(demo_corpus, "val", "ES")
    ds.check_files()
    assert ds.shortest_mix == min(sf.info(ds.files_for(i)["mix"]).frames for i in range(len(ds)))


def test_sample_rate_mismatch(corpus_copy: Path) -> None:
    df = metadata(corpus_copy, "val")
    path = corpus_copy / "val" / "clean" / df["speaker1File"][2]
    data, _ = sf.read(path, dtype="int16")
    sf.write(path, data, 16000, subtype="PCM_16")
    ds = PolSESSDataset(corpus_copy, "val", "ES")
    ds[1]
    with pytest.raises(PolSESSDataError, match="16000 Hz") as info:
        ds[2]
    assert str(path) in str(info.value)


def test_unequal_lengths_within_a_row(corpus_copy: Path) -> None:
    df = metadata(corpus_copy, "val")
    path = corpus_copy / "val" / "clean" / df["speaker2File"][3]
    data, sr = sf.read(path, dtype="int16")
    sf.write(path, data[:-100], sr, subtype="PCM_16")
    ds = PolSESSDataset(corpus_copy, "val", "SB")
    with pytest.raises(PolSESSDataError, match="7900 samples") as info:
        ds[3]
    assert str(path) in str(info.value) and df["mixFile"][3] in str(info.value)


def test_domain_library_does_not_import_ray() -> None:
    code = "import sys, polsess.data, polsess.synth; sys.exit('ray' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
