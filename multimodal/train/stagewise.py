"""Comparing every method fast: the comparison's modes, and each fold's frozen image encoder.

A comparison trains every method on the same folds (crossval.compare_with_baselines). End to end,
every image model learns its own image encoder from raw pixels, and the encoder's forward and
backward passes are nearly all of the time. The fast modes learn (or load) one encoder per fold,
freeze it, cache its maps of every image once (feature_cache.py) and train only the heads on them
(head_training.py); see docs/ARCHITECTURE.md, "Training":

- "stagewise" (the default for small_cnn): per fold, stage 1 trains image_only whole on the fold's
  training rows only (its early-stopping rows are training rows too), so the held-out fold stays
  unseen by the encoder; that model is also the fold's image_only result. Every fold's stage 1
  trains at once, as one compiled model (fold_batched.py), for small images (STAGE1_BATCHED_PIXELS);
  larger ones, or pretrained weights (two phases), train one ordinary run per fold. Stage 2
  freezes each fold's encoder and trains every other image method's head on its maps.
- "frozen" (the default for a pretrained encoder whose weights are at hand): the pretrained
  backbone as it is, frozen, one set of maps for every fold; every image method, image_only
  included, trains its head on them. Without weights (offline) the default is "stagewise".
- "end_to_end": every model trains its whole encoder (train/training.py), as a single run does.

The heads see the maps of the un-augmented images: augmentation is off for them (stage 1 trains
as any run, augmented when the config says so). Methods without an image branch (tabular_only,
linear) train their head alone too, on the table's preprocessed vector computed once: the same
model as end to end (the tabular encoder has no trainable weights), faster. `finetune` trains each
image head's whole model end to end afterwards (head_training.py), off by default.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

from multimodal.core.comparison import checked_mode
from multimodal.core.config import TrainConfig
from multimodal.data.dataset import Dataset
from multimodal.models.assembly import encoders_of
from multimodal.models.backbones import encoder_spec
from multimodal.models.branches import image_backbones, image_encoder
from multimodal.models.fusion import FUSION_METHODS
from multimodal.models.weights import WeightsSource, resolve_weights
from multimodal.runs.run import MODEL_FILE, load_model_file
from multimodal.train.feature_cache import FeatureCache, predict_maps, weights_digest
from multimodal.train.fold_batched import HEAD_BUDGET, FitBudget, budget_for, setup_folds, train_heads, train_setups
from multimodal.train.head_training import IMAGE_BRANCHES, FrozenEncoder, prepare_whole, train_on_maps
from multimodal.train.training import train

STAGE1_ARCH = "image_only"
KEPT_FOLD = (0, 0)   # (repeat, fold) whose models FastFolds keeps when asked (keep_dir)
STAGE1_PREDICT_BATCH = 256   # stage 1's whole models predict every row in batches of this (raw images are large)
# Stage 1 trains its folds at once up to this many pixels a row (frames x size x size): measured
# (bench/RESULTS_compare.md) the race at 24 px 11.5 -> 7.7 s, skin_lesions at 64 px the same
# (131 vs 130 s), growth_sequences (4 frames of 64 px) 14% slower, a batched step costing more than
# its K steps alone.
STAGE1_BATCHED_PIXELS = 48 * 48
FoldTrainer = Callable[[TrainConfig, Path, dict], dict]   # (fold config, run folder, split) -> run summary
FoldsTrainer = Callable[[list[tuple[TrainConfig, dict]]], list[dict]]   # every (fold config, split) -> summaries


def default_mode(encoder: str, weights_at_hand: bool = True) -> str:
    """The fast mode for an encoder: "frozen" for a pretrained one whose weights are at hand,
    else "stagewise" (a random-init encoder frozen as it is would give random features)."""
    return "frozen" if encoder_spec(encoder).imagenet is not None and weights_at_hand else "stagewise"


def reads_images(arch: str) -> bool:
    """Whether a method has an image-encoder branch (its head can train on cached maps)."""
    return any(b in IMAGE_BRANCHES for b in FUSION_METHODS[arch].branches)


def resolve_mode(mode: str | None, config: TrainConfig, images: bool) -> tuple[str, WeightsSource | None]:
    """(the mode to run, the encoder's resolved weights for a fast mode). mode None: the default.
    images: whether any compared method reads images (else nothing is resolved)."""
    checked_mode(mode)
    encoder = config.model.encoder
    if not images or mode == "end_to_end":
        return mode or default_mode(encoder), None
    weights = resolve_weights(encoder, config.model.encoder_weights_file, on_missing=config.on_missing_weights)
    return mode or default_mode(encoder, weights.path is not None), weights


class FastFolds:
    """A fast-mode comparison's fold trainers (for crossval.cross_validate) and its frozen encoders.

    weights: the image encoder's (resolve_mode; None when no method reads images). inputs:
    `model_inputs` of the whole dataset; cache: where the maps go; keep_dir: every method's model
    of the first fold (KEPT_FOLD) saved whole as a run folder under keep_dir/<method>, moved in
    complete (the Playground explains them; a comparison otherwise keeps only the scores)."""

    def __init__(self, mode: str, config: TrainConfig, ds: Dataset, inputs: dict, weights: WeightsSource | None,
                 cache: FeatureCache, *, finetune: bool = False, workdir: Path | None = None,
                 keep_dir: Path | None = None):
        if mode not in ("stagewise", "frozen"):
            raise ValueError(f"FastFolds runs the fast modes, not {mode!r}")
        self.mode, self.config, self.ds, self.inputs, self.weights = mode, config, ds, inputs, weights
        self.cache, self.finetune, self.workdir, self.keep_dir = cache, finetune, workdir, keep_dir
        self._encoders: dict[tuple[int, int], FrozenEncoder] = {}   # (repeat, fold) -> its encoder
        self._shared: FrozenEncoder | None = None                     # the frozen mode's one encoder
        self._embedded: dict[tuple[int, int], dict[str, np.ndarray]] = {}   # fold -> its table's vector, ...
        self.head_budget = HEAD_BUDGET   # how the heads train (fold_batched.py; bench/bench_head_budget.py varies it)
        # How stage 1 trains: None, every run's defaults (config.small_data_settings). Faster budgets
        # measured no better (bench/bench_head_budget.py --stage1; bench/RESULTS_compare.md, "Stage-1 budget").
        self.stage1_budget: FitBudget | None = None
        self.stage1_batched_pixels = STAGE1_BATCHED_PIXELS

    def fold_trainer(self, arch: str) -> FoldTrainer:
        """How `arch` trains a fold: stage 1 (stage-wise image_only) or its head alone."""
        return self._stage1_fold if self.is_stage1(arch) else self._head

    def is_stage1(self, arch: str) -> bool:
        """Whether arch's folds are stage 1 (they make the encoders the other image heads read)."""
        return self.mode == "stagewise" and arch == STAGE1_ARCH

    def heads_batched(self, arch: str) -> bool:
        """Whether arch trains as heads, every fold at once (prepare_heads, then train_prepared)."""
        return not self.finetune and not self.is_stage1(arch)

    def folds_trainer(self, arch: str) -> FoldsTrainer | None:
        """How `arch` trains ALL its folds at once (fold_batched.py: one compiled model); None when
        its folds train one by one (fine-tuning, or a stage 1 of large images or in two phases)."""
        if self.finetune:
            return None
        if self.fold_trainer(arch) == self._stage1_fold:
            return (lambda jobs: self._stage1(jobs, keep=True)) if self._stage1_batched() else None
        return lambda jobs: self._batched_heads(arch, jobs)

    def state(self) -> dict:
        """What another process needs to build the same FastFolds (second_process.py), its frozen
        encoders excepted: they travel with each job (prepare_heads)."""
        return {"mode": self.mode, "config": self.config, "ds": self.ds, "inputs": self.inputs,
                "weights": self.weights, "workdir": self.workdir, "keep_dir": self.keep_dir,
                "head_budget": self.head_budget}

    @classmethod
    def from_state(cls, state: dict) -> FastFolds:
        fast = cls(state["mode"], state["config"], state["ds"], state["inputs"], state["weights"], FeatureCache(None),
                   workdir=state["workdir"], keep_dir=state["keep_dir"])
        fast.head_budget = state["head_budget"]
        return fast

    def needs_stage1(self, arch: str, splits: list[dict]) -> bool:
        """Whether arch's heads on these folds read encoders stage 1 has not made yet (the frozen
        mode's one encoder is made on demand)."""
        return reads_images(arch) and self.mode == "stagewise" and \
            not all((s["repeat"], s["fold"]) in self._encoders for s in splits)

    def prepare_heads(self, arch: str, jobs: list[tuple[TrainConfig, dict]]) -> list[tuple]:
        """Every fold's (config, split, frozen encoder, maps, maps' log) for arch's heads; stage 1
        first for the folds without an encoder (image_only not compared)."""
        images = reads_images(arch)
        missing = [(config, split) for config, split in jobs if (split["repeat"], split["fold"]) not in self._encoders]
        if images and self.mode == "stagewise" and missing:   # image_only not compared: stage 1 all the same
            self._stage1(missing, keep=False)
        prepared = []
        for config, split in jobs:
            frozen = self._encoder_for(config, split) if images else None
            maps, log = self._maps(frozen) if images else (None, None)
            prepared.append((config, split, frozen, maps, log))
        return prepared

    def _batched_heads(self, arch: str, jobs: list[tuple[TrainConfig, dict]]) -> list[dict]:
        return self.train_prepared(arch, self.prepare_heads(arch, jobs))

    def train_prepared(self, arch: str, prepared: list[tuple]) -> list[dict]:
        """arch's heads, every fold at once, on prepare_heads' encoders and maps (in this process
        or another: second_process.py)."""
        kept = next((i for i, (_, split, *_) in enumerate(prepared) if self._keeps(split)), None)
        with contextlib.nullcontext() if kept is None else self._kept(arch) as staging:
            summaries = train_heads([p[:4] for p in prepared], self.ds, self.inputs, self._embedded,
                                    self.head_budget, keep=None if kept is None else {kept: staging})
        return [{**summary, "maps": log, "frozen_encoder": frozen.record(rows=False) if frozen else None}
                for summary, (_, _, frozen, _, log) in zip(summaries, prepared)]

    # -- the kept models ---------------------------------------------------------------------
    def _keeps(self, split: dict) -> bool:
        return self.keep_dir is not None and (split["repeat"], split["fold"]) == KEPT_FOLD

    @contextlib.contextmanager
    def _kept(self, arch: str) -> Iterator[Path]:
        """A hidden staging folder for arch's kept model, moved to keep_dir/<arch> once written whole."""
        self.keep_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{arch}-", dir=self.keep_dir))
        try:
            yield staging
            os.replace(staging, self.keep_dir / arch)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _keep_copy(self, arch: str, run_dir: Path, split: dict) -> None:
        """A fold trained one at a time: its saved run folder copied in whole when it is KEPT_FOLD."""
        if self._keeps(split):
            with self._kept(arch) as staging:
                shutil.copytree(run_dir, staging, dirs_exist_ok=True)

    # -- the encoders -----------------------------------------------------------------------
    def _stage1_batched(self) -> bool:
        """Whether stage 1's folds train at once: when a row's pixels are few (the fits are then
        overhead-bound) and it trains in one phase (pretrained weights mean two phases, each
        compiling afresh). Otherwise its folds train one by one, as ordinary runs (training.train)."""
        images = self.inputs["images"]
        pixels = images.shape[1] * images.shape[2] * images.shape[3]   # frames x size x size
        pretrained = self.weights is not None and self.weights.path is not None
        return pixels <= self.stage1_batched_pixels and not pretrained

    def _stage1(self, jobs: list[tuple[TrainConfig, dict]], keep: bool) -> list[dict]:
        """Stage 1 of these folds: image_only trained whole on each fold's own rows (its early-stopping
        rows are training rows too), every fold at once (fold_batched.py; else one run per fold, see
        _stage1_batched) under the run's settings (or stage1_budget); each fold's encoder frozen and
        its maps cached. keep: KEPT_FOLD's model is kept (image_only is compared)."""
        if not self._stage1_batched():
            return [self._stage1_run(config, split, keep) for config, split in jobs]
        keras.backend.clear_session()
        setups = [prepare_whole(replace(config, model=replace(config.model, arch=STAGE1_ARCH)), self.ds, split,
                                self.inputs, self.weights or WeightsSource(config.model.encoder, "none"))
                  for config, split in jobs]
        settings = setups[0].config   # the run's settings, as training.train would use them
        budget = FitBudget(settings.lr, settings.patience or 0, settings.epochs, as_a_run=True) \
            if self.stage1_budget is None else replace(budget_for(jobs[0][0], self.stage1_budget), as_a_run=True)
        kept = next((i for i, (_, split) in enumerate(jobs) if keep and self._keeps(split)), None)
        with contextlib.nullcontext() if kept is None else self._kept(STAGE1_ARCH) as staging:
            summaries = train_setups(setups, setup_folds(setups, self.ds), self.ds, budget, [None] * len(jobs),
                                     keep=None if kept is None else {kept: staging}, predict_batch=STAGE1_PREDICT_BATCH)
        out = []
        for setup, summary, (_, split) in zip(setups, summaries, jobs):
            encoder = encoders_of(setup.model)["image"]
            frozen = self._freeze(encoder, split, setup.splits)
            _, log = self._maps(frozen, lambda images: predict_maps(encoder, images))   # noqa: B023 (called here)
            out.append({**summary, "frozen_encoder": frozen.record(), "maps": log})
        return out

    def _stage1_run(self, config: TrainConfig, split: dict, keep: bool) -> dict:
        """Stage 1 of one fold as an ordinary run (training.train, in its phases), in a temporary folder."""
        config = replace(config, model=replace(config.model, arch=STAGE1_ARCH))
        if self.stage1_budget is not None:
            budget = budget_for(config, self.stage1_budget)
            config = replace(config, lr=budget.lr, patience=budget.patience, epochs=budget.epochs)
        with tempfile.TemporaryDirectory(prefix="multimodal-stage1-", dir=self.workdir) as folder:
            run_dir = Path(folder)
            summary = train(config, run_dir, dataset=self.ds, split={k: split[k] for k in ("train", "val", "test")},
                            inputs=self.inputs)
            trained = load_model_file(run_dir / MODEL_FILE)
            used = json.loads((run_dir / "config.json").read_text())["splits"]   # the rows train() used
            encoder = encoders_of(trained)["image"]
            frozen = self._freeze(encoder, split, used)
            _, log = self._maps(frozen, lambda images: predict_maps(encoder, images))
            if keep:
                self._keep_copy(STAGE1_ARCH, run_dir, split)
        return {**summary, "frozen_encoder": frozen.record(), "maps": log, "params": int(trained.count_params())}

    def _freeze(self, encoder: keras.Model, split: dict, rows: dict) -> FrozenEncoder:
        """Stage 1's trained image encoder as fold `split`'s frozen encoder; rows: the {"train", "val"}
        row positions it trained on."""
        frozen = FrozenEncoder(self.config.model.encoder, "stagewise", self.weights,
                               image_backbones(encoder)[0].get_weights(), weights_digest(encoder),
                               trained_on={k: [int(i) for i in rows[k]] for k in ("train", "val")})
        self._encoders[(split["repeat"], split["fold"])] = frozen
        return frozen

    def _stage1_fold(self, config: TrainConfig, run_dir: Path, split: dict) -> dict:
        """Stage 1 as image_only's fold of the comparison, alone (kept when it is KEPT_FOLD)."""
        return self._stage1([(config, split)], keep=True)[0]

    def _encoder_for(self, config: TrainConfig, split: dict) -> FrozenEncoder:
        if self.mode == "frozen":
            if self._shared is None:
                self._shared = self._pretrained()
            return self._shared
        key = (split["repeat"], split["fold"])
        if key not in self._encoders:   # image_only not compared (or not yet): stage 1 all the same
            self._stage1([(config, split)], keep=False)
        return self._encoders[key]

    def _pretrained(self) -> FrozenEncoder:
        """The frozen mode's encoder: the resolved weights (or a seeded random init) as they are."""
        config = self.config
        keras.utils.set_random_seed(config.model.seed)
        encoder = image_encoder(config.model.encoder, config.model.image_size, len(self.ds.features.image_cols),
                                augment=False, seed=config.model.seed, weights=self.weights, trainable_backbone=False)
        return FrozenEncoder(config.model.encoder, "frozen", self.weights, image_backbones(encoder)[0].get_weights(),
                             weights_digest(encoder))

    def _rebuilt(self, frozen: FrozenEncoder) -> keras.Model:
        """An image encoder with the frozen weights (to compute maps the cache lacks)."""
        encoder = image_encoder(frozen.encoder, self.config.model.image_size, len(self.ds.features.image_cols),
                                augment=False, weights=WeightsSource(frozen.encoder, "none"))
        frozen.load_into(encoder)
        return encoder

    def _maps(self, frozen: FrozenEncoder,
              compute: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, dict]:
        """Every row's maps by `frozen`, through the cache, and {"computed", "read", "seconds"}."""
        hits, misses, started = self.cache.hits, self.cache.misses, time.perf_counter()
        maps = self.cache.maps(self.inputs["images"], encoder_name=frozen.encoder, weights_sha256=frozen.sha256,
                               compute=compute or (lambda images: predict_maps(self._rebuilt(frozen), images)))
        return maps, {"computed": self.cache.misses - misses, "read": self.cache.hits - hits,
                      "seconds": round(time.perf_counter() - started, 3)}

    # -- the heads --------------------------------------------------------------------------
    def _head(self, config: TrainConfig, run_dir: Path, split: dict) -> dict:
        if not reads_images(config.model.arch):
            frozen, maps, log = None, None, None
        else:
            frozen = self._encoder_for(config, split)
            maps, log = self._maps(frozen)
        summary = train_on_maps(config, run_dir, self.ds, split, self.inputs, frozen, maps, finetune=self.finetune,
                                save=self._keeps(split))
        self._keep_copy(config.model.arch, Path(run_dir), split)
        return {**summary, "frozen_encoder": frozen.record(rows=False) if frozen else None, "maps": log}
