"""The training loop: data, phases, optimisers, EMA, ADA, snapshots, exact resume, multi-process."""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowergan.augment import AdaController, AugmentPipe
from flowergan.config import save_json
from flowergan.networks import build_networks
from flowergan.networks import run_folder as layout
from flowergan.training import checkpoint as ckpt
from flowergan.training.distributed import (
    DistInfo,
    all_reduce_sum_,
    barrier,
    broadcast_module,
    reduce_and_scrub_grads,
)
from flowergan.training.ema import ema_beta, update_ema
from flowergan.training.loggers import RunLoggers
from flowergan.training.phases import PhaseRunner, make_phases
from flowergan.training.plan import RunPlan
from flowergan.training.progress import StatsAccumulator, grid_name, plot_progress, rewind_run, save_grid

log = logging.getLogger(__name__)

GRID_SEED = 123
GRID_SIZE = 64


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the run stopped and the last good checkpoint is kept."""


def cap_cuda_memory(gb: float, device: torch.device) -> float | None:
    """Cap this process's CUDA memory at `gb` GiB (TrainConfig.cuda_memory_gb; 0: no cap): the caching allocator
    then fails with out-of-memory where a card of that size would. Returns the fraction of the card set, or None
    (no cap, or not CUDA: a note is logged)."""
    if gb <= 0:
        return None
    if device.type != "cuda":
        log.info("--cuda-memory-gb %g: no effect on %s (CUDA only)", gb, device)
        return None
    total = torch.cuda.get_device_properties(device).total_memory  # bytes
    fraction = min(gb * 2**30 / total, 1.0)
    if fraction >= 1.0:
        log.warning("--cuda-memory-gb %g: the card has only %.1f GiB; no cap", gb, total / 2**30)
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    log.info("CUDA memory capped at %.2f GiB (%.3f of %.1f GiB)", fraction * total / 2**30, fraction, total / 2**30)
    return fraction


def images_to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float32 in [-1, 1]."""
    return x.to(torch.float32) / 127.5 - 1


class Trainer:
    """One process's view of a training run. Rank 0 writes; every rank computes its share of the batch."""

    def __init__(self, plan: RunPlan, run_dir: Path | None, dataset, *, device: torch.device,
                 info: DistInfo = DistInfo(), sampler_cls=None, sync_free: bool | None = None):
        """`plan`: the run's final settings, start weights and resume point (`training.plan.plan_run`, or
        `plan_training` from Python); nothing is resolved here. `device` is this process's device, of the
        plan's kind. `sync_free`: never read a device value on the host inside `step()` (default: on
        accelerators; True on the CPU runs the accelerator path, for tests)."""
        r = plan.resolved
        if r.device.split(":")[0] != device.type or r.world_size != info.world_size:
            raise ValueError(f"the plan is for {r.world_size} process(es) on {r.device}, but this Trainer runs "
                             f"on {device} in {info.world_size}; plan with device={device.type!r} and "
                             f"world_size={info.world_size}")
        self.resolved = r
        self.cfg = cfg = r.train
        self.model_cfg = model_cfg = r.model
        self.info, self.device, self.run_dir, self.dataset = info, device, run_dir, dataset
        self.batch_gpu, self.rounds = r.batch_gpu, r.rounds
        self.sync_free = device.type != "cpu" if sync_free is None else bool(sync_free)
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        cap_cuda_memory(cfg.cuda_memory_gb, device)

        # Networks: identical on every rank (same seed), then rank 0's copy is broadcast anyway.
        G, D = build_networks(model_cfg, seed=cfg.seed)
        self.G = G.to(device).train().requires_grad_(False)
        self.D = D.to(device).train().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        init_modules = plan.start
        if init_modules:  # the official resume: G -> G, G_ema -> G_ema, D -> D
            def pick(*names):
                return next((init_modules[k] for k in names if init_modules.get(k) is not None), None)

            srcs = {"G": pick("G", "G_ema"), "G_ema": pick("G_ema", "G"), "D": pick("D")}
            for name, src in srcs.items():
                if src is not None:
                    getattr(self, name).load_state_dict(src.state_dict())
        for m in (self.G, self.D, self.G_ema):
            broadcast_module(m, info)
        self.frozen_d = self._frozen_d_params(cfg.freeze_d)

        # Augmentation.
        self.augment_pipe = None
        self.ada = None
        if cfg.aug != "none":
            p = cfg.p  # fixed: a constant of the pipe; ada: the controller owns p, the pipe reads it
            if cfg.aug == "ada":
                self.ada = AdaController(target=cfg.target, speed_kimg=cfg.ada_kimg, interval=cfg.ada_interval,
                                         p=cfg.p, device=device)
                p = self.ada.current_p
            # On the CPU a host sync is free, so pad only as far as the batch's transforms reach (much less work).
            pad = "max" if self.sync_free else "tight"
            self.augment_pipe = AugmentPipe.from_preset(cfg.aug_preset, p=p, geom_pad=pad,
                                                        sync_free=self.sync_free).to(device)

        # Phases and optimisers with the lazy-regularisation correction of lr and betas.
        self.phases = make_phases(cfg.r1_interval, cfg.pl_interval)
        self.opts: dict[str, torch.optim.Optimizer] = {}
        for module, lr in (("G", cfg.lr), ("D", cfg.lr)):
            ratio = next(p.lr_ratio for p in self.phases if p.module == module)
            net = self.G if module == "G" else self.D
            # fused: one kernel per step, and its step counter lives on the device (the for-each Adam reads
            # a host-side counter each step, which also blocks CUDA graph capture). On the CPU the fused step
            # ran 4.4-4.6x (tiny) and 2.6-2.8x (paper-128) faster than the for-each one (bench/cpu_kernels.py);
            # both match Adam's formula in float64 (tests/training/test_trainer.py), within a float32 rounding.
            self.opts[module] = torch.optim.Adam(net.parameters(), lr=lr * ratio,
                                                 betas=(cfg.betas[0] ** ratio, cfg.betas[1] ** ratio), eps=cfg.eps,
                                                 fused=True)
        autocast = None
        if r.amp == "bf16":
            autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16)  # noqa: E731
        synth_main = D_main = None
        if cfg.compile:  # compiled callables for the main phases only (regularisers need double backward)
            mode = cfg.compile_mode  # reduce-overhead: CUDA graphs (the shapes of the main phases are static)
            synth_main, D_main = torch.compile(self.G.synthesis, mode=mode), torch.compile(self.D, mode=mode)
        self.loss = PhaseRunner(self.G, self.D, self.augment_pipe, r1_gamma=cfg.gamma,
                                style_mixing=cfg.style_mixing, pl_weight=cfg.pl_weight, pl_decay=cfg.pl_decay,
                                pl_batch_shrink=cfg.pl_batch_shrink, noise_mode=cfg.noise_mode,
                                autocast=autocast, synthesis_main=synth_main, D_main=D_main)

        # Data order: a seeded infinite sampler sharded over processes (its position is checkpointed).
        if sampler_cls is None:
            from flowergan.data.dataset import InfiniteSampler as sampler_cls
        self.sampler = sampler_cls(len(dataset), rank=info.rank, world=info.world_size, seed=cfg.seed, shuffle=True)
        self.label_rng = np.random.RandomState(cfg.seed * 1000 + info.rank)
        self.loader = None  # started at the first next_real(), after any resume has set the sampler

        self.cur_nimg = 0
        self.batch_idx = 0
        self.best: dict[str, Any] = {}
        self.stats = StatsAccumulator()
        self.first_call_sec: dict[str, float] = {}  # phase -> seconds of its first call (start-up cost), synced
        torch.manual_seed(cfg.seed * info.world_size + info.rank)
        if plan.resume is not None:
            self._resume(Path(plan.resume))

    # ------------------------------------------------------------------------------------------------
    def _frozen_d_params(self, n: int) -> set[int]:
        if n <= 0:
            return set()
        layers = self.D.layers_in_order()[:n]
        return {id(p) for layer in layers for p in layer.parameters()}

    def _set_trainable(self, module: str) -> torch.nn.Module:
        net = self.G if module == "G" else self.D
        net.requires_grad_(True)
        if module == "D" and self.frozen_d:
            for p in self.D.parameters():
                if id(p) in self.frozen_d:
                    p.requires_grad_(False)
        return net

    def next_real(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next real batch on the device: decoded in background workers (cfg.data_workers), pinned, copied
        without blocking, one step ahead; the checkpointed sampler position counts consumed batches only."""
        if self.loader is None:
            from flowergan.data.loader import BatchLoader, default_workers

            workers = self.cfg.data_workers
            if workers < 0:
                workers = default_workers(getattr(self.dataset, "cache_mode", "memory"))
            self.loader = BatchLoader(self.dataset, self.sampler, self.batch_gpu * self.rounds, self.device,
                                      workers=workers)
        img, c = self.loader.next()  # uint8 [N, C, H, W], float32 [N, label_dim]
        img = images_to_float(img)
        if self.model_cfg.c_dim == 0:
            c = c[:, :0]
        return img, c

    def sample_c(self, n: int) -> torch.Tensor:
        """Labels for generated images, drawn from the training set's label distribution."""
        if self.model_cfg.c_dim == 0:
            return torch.zeros([n, 0], device=self.device)
        idx = self.label_rng.randint(len(self.dataset), size=n)
        lab = np.stack([self.dataset.get_label(int(i)) for i in idx])
        return torch.from_numpy(lab.astype(np.float32)).to(self.device, non_blocking=True)

    # ------------------------------------------------------------------------------------------------
    def step(self, real: tuple[torch.Tensor, torch.Tensor] | None = None, gen_z: torch.Tensor | None = None,
             gen_c: torch.Tensor | None = None, phases: list[str] | None = None) -> dict[str, torch.Tensor]:
        """One training iteration (all due phases, EMA, ADA). Inputs may be given explicitly (tests)."""
        cfg = self.cfg
        real_img, real_c = real if real is not None else self.next_real()  # [rounds * batch_gpu, ...]
        n_ph, n = len(self.phases), real_img.shape[0]
        if gen_z is None:
            gen_z = torch.randn([n_ph, n, self.model_cfg.z_dim], device=self.device)
        if gen_c is None:
            gen_c = self.sample_c(n_ph * n).reshape(n_ph, n, -1)
        rounds = max(n // self.batch_gpu, 1)
        bg = n // rounds
        all_stats: dict[str, torch.Tensor] = {}
        for i, phase in enumerate(self.phases):
            if self.batch_idx % phase.interval != 0 or (phases is not None and phase.name not in phases):
                continue
            if not self.loss.has_work(phase.name):  # e.g. Greg with pl_weight 0: no loss, no optimiser step
                continue
            first = phase.name not in self.first_call_sec
            if first:  # once per phase: where start-up time goes (cuDNN autotuning, allocator growth, compiling)
                _sync(self.device)
                t_first = time.perf_counter()
            opt = self.opts[phase.module]
            opt.zero_grad(set_to_none=True)
            net = self._set_trainable(phase.module)
            per_round = []
            for k in range(rounds):  # gradients add up over the rounds, as in the official loop
                sl = slice(k * bg, (k + 1) * bg)
                st, real_signs = self.loss.accumulate(phase.name, real_img[sl], real_c[sl], gen_z[i][sl],
                                                      gen_c[i][sl], gain=phase.interval)
                per_round.append(st)
                if self.ada is not None and real_signs is not None:
                    self.ada.accumulate(real_signs)  # the phases report D's signs on reals; the step feeds ADA
            stats = {key: torch.stack([st[key] for st in per_round]).mean() for key in per_round[0]}
            net.requires_grad_(False)
            reduce_and_scrub_grads(list(net.parameters()), self.info, sync_free=self.sync_free)  # one flat scrub
            opt.step()
            all_stats.update(stats)
            if first:
                _sync(self.device)
                self.first_call_sec[phase.name] = time.perf_counter() - t_first
                log.info("first %s call: %.2f s", phase.name, self.first_call_sec[phase.name])
        update_ema(self.G_ema, self.G, ema_beta(cfg.batch, cfg.ema_kimg, self.cur_nimg, cfg.ema_rampup or None))
        self.cur_nimg += cfg.batch
        self.batch_idx += 1
        if self.ada is not None:
            self.ada.end_minibatch()
            if self.ada.ready:  # every ada_interval iterations, as the official loop; on the device
                self.ada.step(cfg.batch * self.ada.interval, reduce=lambda t: all_reduce_sum_(t, self.info))
        if self.augment_pipe is not None:
            all_stats["Progress/augment"] = self.augment_pipe.p.detach().clone()
        all_stats["Loss/pl_mean"] = self.loss.pl_mean.detach().clone()
        self.stats.add(all_stats)
        if not self.sync_free:  # free to check every step on the CPU (train() checks at log time anyway)
            self._check_finite(all_stats)
        return all_stats

    def _check_finite(self, stats: dict[str, torch.Tensor]) -> None:
        bad = [k for k, v in stats.items() if k.startswith("Loss/") and not torch.isfinite(v).all()]
        if bad:
            raise TrainingDiverged(
                f"training diverged at {self.cur_nimg / 1000:.3f} kimg: {', '.join(bad)} became NaN/inf. "
                f"The run stopped; the last good checkpoint is kept. Try a lower learning rate, a larger "
                f"--gamma, or resume from that checkpoint with another --seed.")

    # ------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"cur_nimg": self.cur_nimg, "batch_idx": self.batch_idx, "pl_mean": float(self.loss.pl_mean),
                "ada": self.ada.state_dict() if self.ada is not None else None,  # ADA's p: its one stored copy
                "sampler": self.loader.sampler_state() if self.loader is not None else self.sampler.state_dict(),
                "label_rng": _np_rng_state(self.label_rng),
                "best": self.best, "world_size": self.info.world_size}

    def save_checkpoint(self, extra_meta: dict[str, Any] | None = None) -> Path | None:
        if not self.info.is_main or self.run_dir is None:
            return None
        modules = {"G": self.G, "G_ema": self.G_ema, "D": self.D}
        meta = {"kimg": self.cur_nimg / 1000, "train": self.cfg.to_dict(),
                "dataset": {"name": Path(self.cfg.data).name,  # for the model card; size without x-flips
                            "size": len(self.dataset) // (2 if getattr(self.dataset, "xflip", False) else 1)},
                **(extra_meta or {})}
        names = getattr(self.dataset, "class_names", None) if self.model_cfg.c_dim else None
        if names is not None and len(names) == self.model_cfg.c_dim:
            meta["class_names"] = list(names)  # the explorer and `directions --method class` show them
        path = ckpt.save_checkpoint(self.run_dir, self.model_cfg, modules, self.opts, self.state(),
                                    ckpt.rng_state(self.device), meta)
        protect = {self.best["checkpoint"]} if self.best.get("checkpoint") else set()
        ckpt.prune_checkpoints(self.run_dir, self.cfg.keep, protect)
        return path

    def _resume(self, path: Path) -> None:
        from flowergan.networks.store import load_model_dir

        ckpt.verify_checkpoint(path)  # every restored number checked before any is used
        d = load_model_dir(path, which=("G", "G_ema", "D"))
        if d["config"] != self.model_cfg:
            raise ValueError(f"{path}: the checkpoint's model config differs from this run's; resume without "
                             f"changing model flags (checkpoint: {json.dumps(d['config'].to_dict())})")
        self.G.load_state_dict(d["G"].state_dict())
        self.G_ema.load_state_dict(d["G_ema"].state_dict())
        self.D.load_state_dict(d["D"].state_dict())
        state, rng = ckpt.load_checkpoint_state(path, self.opts)
        if state.get("world_size", 1) != self.info.world_size:
            log.warning("resuming with %d processes; the checkpoint was written by %d (the data order changes)",
                        self.info.world_size, state.get("world_size"))
        self.cur_nimg, self.batch_idx = int(state["cur_nimg"]), int(state["batch_idx"])
        self.loss.pl_mean.fill_(float(state["pl_mean"]))
        ada_state = ckpt.stored_ada_state(path, state) if self.ada is not None else None
        if ada_state is not None:
            self.ada.load_state_dict(ada_state)
        self.sampler.load_state_dict(state["sampler"])
        if state.get("label_rng"):
            self.label_rng.set_state(_np_rng_from_state(state["label_rng"]))
        self.best = state.get("best") or {}
        if self.info.world_size == 1:
            ckpt.set_rng_state(rng, self.device)
        else:
            torch.manual_seed(self.cfg.seed * self.info.world_size + self.info.rank + self.batch_idx)
        log.info("resumed from %s at %.3f kimg (augment p %.4f)", path, self.cur_nimg / 1000,
                 float(self.augment_pipe.p) if self.augment_pipe is not None else 0.0)

    # ------------------------------------------------------------------------------------------------
    def fixed_grid(self) -> torch.Tensor:
        """The same 64 latents (and labels) at every snapshot, rendered by G_ema with constant noise."""
        g = torch.Generator().manual_seed(GRID_SEED)
        z = torch.randn([GRID_SIZE, self.model_cfg.z_dim], generator=g).to(self.device)
        c = torch.zeros([GRID_SIZE, self.model_cfg.c_dim], device=self.device)
        if self.model_cfg.c_dim:
            c[torch.arange(GRID_SIZE), torch.arange(GRID_SIZE) % self.model_cfg.c_dim] = 1
        with torch.no_grad():
            return torch.cat([self.G_ema(z[i:i + 16], c[i:i + 16], noise_mode="const")
                              for i in range(0, GRID_SIZE, 16)])

    def run_metrics(self) -> dict[str, float]:
        if not self.cfg.metrics:
            return {}
        from flowergan.metrics.registry import compute, scalars

        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            res = compute(self.G_ema, list(self.cfg.metrics), self.cfg.data, num_gen=self.cfg.metrics_num,
                          device=self.device, progress=False)
        return scalars(res)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _np_rng_state(rng: np.random.RandomState) -> list:
    name, keys, pos, has_gauss, cached = rng.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _np_rng_from_state(s: list):
    return (s[0], np.array(s[1], dtype=np.uint32), s[2], s[3], s[4])


def train(trainer: Trainer, *, progress: bool = True) -> dict[str, Any]:
    """Run until cfg.kimg; snapshot every cfg.snap kimg and at the end. Returns the final statistics."""
    cfg, info = trainer.cfg, trainer.info
    run_dir = trainer.run_dir
    total = int(round(cfg.kimg * 1000))
    snap_nimg = max(int(round(cfg.snap * 1000)), 1)
    log_nimg = int(round(cfg.log_every * 1000)) if cfg.log_every > 0 else max(total // 50, cfg.batch)
    logger = None
    if info.is_main and run_dir is not None:
        if trainer.cur_nimg > 0:  # resumed: forget what a killed process wrote after the checkpoint
            rewind_run(run_dir, trainer.cur_nimg / 1000)
        logger = RunLoggers(run_dir, cfg.log, config={"model": trainer.model_cfg.to_dict(), "train": cfg.to_dict()})
    if logger is not None and trainer.cur_nimg == 0:
        reals = trainer.dataset.get_batch(np.arange(min(GRID_SIZE, len(trainer.dataset))))[0]
        grid = save_grid(images_to_float(torch.from_numpy(np.asarray(reals))), run_dir / "reals.png")
        logger.image("reals", grid, 0.0)
    bar = None
    if progress and info.is_main:
        from tqdm import tqdm

        # Counted in whole images, capped at the total (the last batch may overshoot it), shown in kimg: a float
        # count overshot the total, with a TqdmWarning and a negative time left at the end of every run.
        bar = tqdm(total=total, initial=min(trainer.cur_nimg, total), unit="img", unit_scale=1e-3,
                   dynamic_ncols=True,
                   bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg [{elapsed}<{remaining}{postfix}]")
    next_log = (trainer.cur_nimg // log_nimg + 1) * log_nimg
    next_snap = (trainer.cur_nimg // snap_nimg + 1) * snap_nimg
    t_tick, n_tick = time.perf_counter(), trainer.cur_nimg
    last: dict[str, Any] = {}
    peak_run = 0.0  # GiB, the largest per-tick peak so far
    first_logged: set[str] = set()  # phases whose first-call seconds are in the log
    try:
        while trainer.cur_nimg < total:
            prev = trainer.cur_nimg
            trainer.step()
            if bar is not None:
                bar.update(min(trainer.cur_nimg, total) - min(prev, total))
            done = trainer.cur_nimg >= total
            if trainer.cur_nimg >= next_log or trainer.cur_nimg >= next_snap or done:
                bad = trainer.stats.nonfinite()
                if bad:
                    trainer._check_finite({k: torch.tensor(float("nan")) for k in bad})
                means = trainer.stats.means(reduce=(lambda t: all_reduce_sum_(t, info) / info.world_size))
                trainer.stats.reset()
                dt = time.perf_counter() - t_tick
                imgs = trainer.cur_nimg - n_tick
                rec = {"kimg": trainer.cur_nimg / 1000, "batch_idx": trainer.batch_idx,
                       "Timing/sec_per_kimg": dt / max(imgs, 1) * 1000, "Timing/img_per_s": imgs / max(dt, 1e-9),
                       "Timing/unix_time": time.time(), **means}  # wall clock: launch-to-N-kimg from outside
                for k, v in trainer.first_call_sec.items():  # the start-up breakdown: each phase once
                    if k not in first_logged:
                        rec[f"Timing/first_call_sec/{k}"] = v
                        first_logged.add(k)
                if trainer.ada is not None and trainer.ada.last_rt is not None:
                    rec["Progress/rt"] = trainer.ada.last_rt
                if trainer.device.type == "cuda":  # this tick's peak (reset each tick, as the official logs it)
                    rec["Resources/peak_gpu_mem_gb"] = torch.cuda.max_memory_allocated(trainer.device) / 2**30
                    peak_run = rec["Resources/peak_gpu_mem_gb_run"] = max(peak_run, rec["Resources/peak_gpu_mem_gb"])
                    torch.cuda.reset_peak_memory_stats(trainer.device)
                t_tick, n_tick = time.perf_counter(), trainer.cur_nimg
                next_log = (trainer.cur_nimg // log_nimg + 1) * log_nimg
                if logger is not None:
                    logger.write(rec)
                if bar is not None:
                    bar.set_postfix_str(_postfix(rec), refresh=False)
                last = rec
            if trainer.cur_nimg >= next_snap or done:
                next_snap = (trainer.cur_nimg // snap_nimg + 1) * snap_nimg
                _snapshot(trainer, logger, done)
                barrier(info)
    finally:
        if bar is not None:
            bar.close()
        if logger is not None:
            logger.close()
    return last


def _postfix(rec: dict[str, Any]) -> str:
    parts = [f"{rec['Timing/img_per_s']:.1f} img/s", f"{rec['Timing/sec_per_kimg']:.0f} s/kimg"]
    for key, short in (("Loss/G/loss", "G"), ("Loss/D/loss_real", "Dr"), ("Loss/D/loss_fake", "Df"),
                       ("Progress/augment", "p")):
        if key in rec and math.isfinite(rec[key]):
            parts.append(f"{short} {rec[key]:.3f}")
    return ", ".join(parts)


def _snapshot(trainer: Trainer, logger: RunLoggers | None, done: bool) -> None:
    """Metrics (under fork_rng, on every rank), then on rank 0: grid and metrics line, then the checkpoint
    (with the RNG state of this exact moment), plot. The checkpoint appears last, so after a kill -9 every
    checkpoint has its grid and log lines; anything written past the resumed checkpoint is dropped on resume."""
    run_dir = trainer.run_dir
    metrics = trainer.run_metrics() if trainer.cfg.metrics else {}
    if not trainer.info.is_main or run_dir is None:
        return
    kimg = trainer.cur_nimg / 1000
    name = layout.checkpoint_name(trainer.cur_nimg)
    if "fid" in metrics and (not trainer.best or metrics["fid"] < trainer.best.get("fid", math.inf)):
        trainer.best = {"fid": metrics["fid"], "kimg": kimg, "checkpoint": name}
    (run_dir / layout.SAMPLES_DIR).mkdir(exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        grid = save_grid(trainer.fixed_grid(), run_dir / layout.SAMPLES_DIR / grid_name(kimg))
    if logger is not None:
        logger.image("fakes", grid, kimg)
    if logger is not None and metrics:
        logger.write({"kimg": kimg, **{f"Metrics/{k}": v for k, v in metrics.items()}})
    path = trainer.save_checkpoint({"metrics": metrics})
    plot_progress(run_dir / layout.LOG_FILE, run_dir / layout.PROGRESS_PLOT)
    save_json({"checkpoint": str(path), "kimg": kimg, "best": trainer.best, "done": done}, run_dir / layout.LATEST)
    log.info("snapshot at %.3f kimg -> %s%s", kimg, path,
             "".join(f", {k} {v:.3f}" for k, v in metrics.items()))
