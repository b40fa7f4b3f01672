"""The lab's sweep: every objective x {none, sn, sr-dynamic} x 3 seeds on both mixtures, then the best
configuration of each mixture over 10 seeds, written as a Markdown table (mean ± standard error).

    python -m translate.lab.sweep --out docs/lab-sweep.md [--workers 2] [--cache checkpoints/lab-sweep]

Each run's JSON is cached under --cache as soon as it finishes (written atomically), so an interrupted
sweep continues where it stopped. Every worker process uses one torch thread.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, fields

from translate.errors import UsageError
from translate.lab.config import MIXTURE_NAMES, OBJECTIVE_CHOICES, LabConfig

SWEEP_D_REGS = ("none", "sn", "sr-dynamic")
SWEEP_SEEDS = 3
BEST_SEEDS = 10

# PacGAN's Table 1 (Lin et al. 2018), 10 trials each: (modes, high-quality %, reverse KL).
PACGAN_TABLE1 = {
    "grid25": [("GAN", 17.3, 94.8, 0.70), ("PacGAN4", 24.8, 93.6, 0.04)],
    "ring8": [("GAN", 6.3, 98.2, 0.45), ("PacGAN2", 7.9, 95.6, 0.07)],
}


@dataclass(frozen=True)
class RunSpec:
    mixture: str
    objective: str
    d_reg: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.mixture}_{self.objective}_{self.d_reg}_seed{self.seed}"

    def config(self, overrides: dict | None = None) -> LabConfig:
        values = dict(overrides or {})
        values.update(mixture=self.mixture, objective=self.objective, d_reg=self.d_reg, seed=self.seed)
        return LabConfig(**values)


def grid_specs(mixtures, objectives, d_regs, seeds) -> list[RunSpec]:
    return [RunSpec(m, o, r, s) for m in mixtures for o in objectives for r in d_regs for s in seeds]


#: Raise it when a change to the lab's training or metrics changes what a run with the same settings
#: gives: cached results of another version are trained again, not mixed into new tables.
LAB_RESULT_VERSION = 2


def _config_fingerprint(config: LabConfig) -> dict:
    return asdict(config)


def _cache_path(cache_dir: str, spec: RunSpec) -> str:
    return os.path.join(cache_dir, spec.key + ".json")


def load_cached(cache_dir: str, spec: RunSpec, overrides: dict | None = None) -> dict | None:
    """The cached result of `spec`, or None when it is missing or was made with another config."""
    path = _cache_path(cache_dir, spec)
    try:
        with open(path) as f:
            result = json.load(f)
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(result, dict):
        return None  # not a result of ours (damaged, or edited): run it again
    if result.get("config") != _config_fingerprint(spec.config(overrides).validate()):
        return None  # the defaults changed since: run it again
    if result.get("lab_version") != LAB_RESULT_VERSION:
        return None  # made by a lab that trained or measured otherwise: run it again
    return result


def run_one(spec: RunSpec, cache_dir: str, overrides: dict | None = None, threads: int = 1) -> dict:
    """Train `spec` (unless cached) and cache its JSON atomically."""
    cached = load_cached(cache_dir, spec, overrides)
    if cached is not None:
        return cached
    import torch

    from translate.lab.train import train_mog

    torch.set_num_threads(threads)
    result = {**train_mog(spec.config(overrides)).to_dict(), "lab_version": LAB_RESULT_VERSION}
    os.makedirs(cache_dir, exist_ok=True)
    path = _cache_path(cache_dir, spec)
    tmp = f"{path}.{os.getpid()}.part"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, path)
    return result


def run_all(specs, cache_dir: str, *, workers: int = 1, overrides: dict | None = None, log=print) -> list[dict]:
    """Results of all `specs`, in order; cached ones are read, the others trained on `workers` processes."""
    results: dict[RunSpec, dict] = {}
    todo = []
    for spec in specs:
        cached = load_cached(cache_dir, spec, overrides)
        if cached is not None:
            results[spec] = cached
        else:
            todo.append(spec)
    log(f"{len(specs) - len(todo)} of {len(specs)} runs cached; {len(todo)} to train on {workers} worker(s)")
    started = time.perf_counter()

    def report(spec, result, done):
        log(
            f"[{done}/{len(todo)}] {spec.key}: modes {result['modes']}/{result['num_modes']}, "
            f"HQ {100 * result['high_quality_fraction']:.1f}%, rKL {_fmt_opt(result['reverse_kl'])}, "
            f"{result['seconds']:.1f} s (elapsed {time.perf_counter() - started:.0f} s)"
        )

    if workers <= 1:
        for i, spec in enumerate(todo, 1):
            results[spec] = run_one(spec, cache_dir, overrides)
            report(spec, results[spec], i)
    elif todo:
        # The workers leave Ctrl-C to this process, which stops them: a run cut short is not cached, and
        # the queued ones are not started (without this the pool trained every queued run before the
        # sweep stopped, or each worker printed a traceback of its own).
        with ProcessPoolExecutor(max_workers=workers, initializer=_leave_interrupts_to_the_sweep) as pool:
            try:
                futures = {pool.submit(run_one, spec, cache_dir, overrides): spec for spec in todo}
                pending, done = set(futures), 0
                while pending:
                    # Waits of a second: Ctrl-C may reach another thread of this process (the pool's), and
                    # a wait without a timeout would act on it only when a run finishes, minutes later.
                    finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                    for future in sorted(finished, key=lambda f: todo.index(futures[f])):
                        done += 1
                        spec = futures[future]
                        results[spec] = future.result()
                        report(spec, results[spec], done)
            except KeyboardInterrupt:
                # (Python 3.14 has pool.terminate_workers(); before it, the pool's own process table.)
                workers_now = list((getattr(pool, "_processes", None) or {}).values())
                for process in workers_now:
                    process.terminate()
                for process in workers_now:
                    process.join(timeout=10)
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    return [results[spec] for spec in specs]


def _leave_interrupts_to_the_sweep() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _fmt_opt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@dataclass
class Summary:
    """Mean and standard error over seeds of one (mixture, objective, d_reg)."""

    mixture: str
    objective: str
    d_reg: str
    seeds: int
    num_modes: int
    modes: tuple[float, float]
    strict_modes: tuple[float, float]
    high_quality: tuple[float, float]  # percent
    reverse_kl: tuple[float, float] | None  # over the seeds that had any high-quality sample
    reverse_kl_missing: int  # seeds without a single high-quality sample
    seconds: tuple[float, float]
    cpu_seconds: tuple[float, float]
    all_modes_seeds: int  # seeds that captured every mode


def mean_and_standard_error(values) -> tuple[float, float]:
    """Mean and its standard error, sample std / sqrt(n) (0 for a single value)."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def summarize(results: list[dict]) -> list[Summary]:
    """One Summary per (mixture, objective, d_reg), in first-seen order."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["mixture"], r["objective"], r["d_reg"]), []).append(r)
    out = []
    for (mixture, objective, d_reg), runs in groups.items():
        rkls = [r["reverse_kl"] for r in runs if r["reverse_kl"] is not None]
        out.append(
            Summary(
                mixture=mixture,
                objective=objective,
                d_reg=d_reg,
                seeds=len(runs),
                num_modes=runs[0]["num_modes"],
                modes=mean_and_standard_error(r["modes"] for r in runs),
                strict_modes=mean_and_standard_error(r["strict_modes"] for r in runs),
                high_quality=mean_and_standard_error(100 * r["high_quality_fraction"] for r in runs),
                reverse_kl=mean_and_standard_error(rkls) if rkls else None,
                reverse_kl_missing=len(runs) - len(rkls),
                seconds=mean_and_standard_error(r["seconds"] for r in runs),
                cpu_seconds=mean_and_standard_error(r.get("cpu_seconds", r["seconds"]) for r in runs),
                all_modes_seeds=sum(r["modes"] == r["num_modes"] for r in runs),
            )
        )
    return out


def ranking_key(s: Summary) -> tuple:
    """Best first: most modes (strict), then most modes captured at all, then fewest reverse-KL nats, then
    most high-quality samples."""
    rkl = s.reverse_kl[0] if s.reverse_kl is not None and s.reverse_kl_missing == 0 else math.inf
    return (-s.strict_modes[0], -s.modes[0], rkl, -s.high_quality[0])


def pick_best(summaries: list[Summary], mixture: str) -> Summary:
    candidates = [s for s in summaries if s.mixture == mixture]
    if not candidates:
        raise ValueError(f"no results for {mixture}")
    return min(candidates, key=ranking_key)


def _pm(pair, digits: int, scale: float = 1.0) -> str:
    mean, se = pair
    return f"{mean * scale:.{digits}f} ± {se * scale:.{digits}f}"


def summary_row(s: Summary, label: str | None = None) -> str:
    rkl = "n/a" if s.reverse_kl is None else _pm(s.reverse_kl, 3)
    if s.reverse_kl_missing:
        rkl += f" ({s.reverse_kl_missing} seed{'s' if s.reverse_kl_missing > 1 else ''} n/a)"
    name = label or f"{s.objective} | {s.d_reg}"
    return (
        f"| {name} | {s.seeds} | {_pm(s.modes, 1)} | {_pm(s.strict_modes, 1)} | {_pm(s.high_quality, 1)} | "
        f"{rkl} | {s.all_modes_seeds}/{s.seeds} | {_pm(s.seconds, 0)} | {_pm(s.cpu_seconds, 0)} |"
    )


HEADER = (
    "| objective | D reg | seeds | modes | modes (>= 20) | high quality % | reverse KL | all modes | wall (s) | CPU (s) |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def render_markdown(summaries: list[Summary], best: dict[str, Summary], overrides: dict, wall_seconds: float) -> str:
    config = LabConfig(**overrides)
    lines = [
        "# Lab sweep: mode collapse on PacGAN's 2-D mixtures",
        "",
        "Generated by `python -m translate.lab.sweep`; mean ± standard error over seeds. "
        f"{config.eval_samples:,} samples per run; a sample is high quality within 3 std of its nearest mode; "
        "a mode is captured with >= 1 high-quality sample (and counted in 'modes (>= 20)' with >= 20); reverse KL is that of the "
        "histogram of high-quality samples over the modes against uniform. 'all modes' counts the seeds that "
        "captured every mode. Times are per run, on one torch thread (the sweep's workers run side by side): "
        "wall seconds, and the process's CPU seconds, which other jobs on the machine inflate less.",
        "",
        f"Shared settings (LabConfig defaults{', with ' + ', '.join(f'{k}={v}' for k, v in overrides.items()) if overrides else ''}): "
        f"{config.steps} G steps, {config.d_steps} D steps per G step, batch {config.batch_size}; "
        f"G: {config.g_depth} hidden ReLU layers of {config.g_width} plus the skip {config.g_skip:g} z; "
        f"D: {config.d_fourier_features} random Fourier features (sigma {config.d_fourier_sigma:g}), "
        f"{config.d_depth} hidden ReLU layers of {config.d_width}; Adam lr {config.lr_g:g} (G) / {config.lr_d:g} (D), "
        f"betas ({config.beta1:g}, {config.beta2:g}), RMSProp lr {config.rmsprop_lr:g} for wgan (clip {config.clip_value:g}); "
        f"WGAN-GP lambda {config.gp_weight:g}; both lrs decay linearly to {config.lr_floor:g} over the last "
        f"{1 - config.lr_decay_from:.0%} of the steps. "
        f"Whole sweep: {wall_seconds / 60:.1f} min of wall time for the runs trained in this invocation.",
        "",
    ]
    for mixture in MIXTURE_NAMES:
        rows = [s for s in summaries if s.mixture == mixture]  # the grid's runs (the best's are in `best`)
        if not rows:
            continue
        lines += [f"## {mixture}", "", HEADER]
        lines += [summary_row(s, f"{s.objective} | {s.d_reg}") for s in rows]
        lines.append("")
        if mixture in best:
            b = best[mixture]
            lines += [
                f"Best configuration on {mixture}: **{b.objective}, d-reg {b.d_reg}**, over {b.seeds} seeds:",
                "",
                HEADER,
                summary_row(b, f"**{b.objective}** | **{b.d_reg}**"),
                "",
            ]
        lines += [
            f"PacGAN's Table 1 on {mixture} (10 trials): "
            + "; ".join(f"{name} {m} modes, {hq}% high quality, reverse KL {kl:.2f}" for name, m, hq, kl in PACGAN_TABLE1[mixture])
            + ".",
            "",
        ]
    return "\n".join(lines)


SNAPSHOT_FRACTIONS = (0.0, 0.1, 0.25, 0.5, 1.0)


def draw_figure(path: str, mixture: str, specs: list[tuple[str, RunSpec]], overrides: dict | None = None, log=print) -> None:
    """Train each (label, spec) again with snapshots and draw one row of panels per run into `path`."""
    import torch

    from translate.lab.mixtures import get_mixture
    from translate.lab.plot import plot_runs
    from translate.lab.train import train_mog

    torch.set_num_threads(1)
    rows = []
    for label, spec in specs:
        config = spec.config(overrides)
        steps = tuple(sorted({round(config.steps * f) for f in SNAPSHOT_FRACTIONS}))
        result = train_mog(config, snapshot_steps=steps)
        m = result.metrics
        rows.append((f"{label}\n{m.modes}/{m.num_modes} modes, HQ {100 * m.high_quality_fraction:.1f}%", result.snapshots))
        log(f"figure row {label}: modes {m.modes}/{m.num_modes}, HQ {100 * m.high_quality_fraction:.1f}%")
    plot_runs(rows, get_mixture(mixture), path)


def worst_unregularized(summaries: list[Summary], mixture: str) -> Summary:
    """The objective that loses most modes without a D regularizer: the figure's collapse example."""
    candidates = [s for s in summaries if s.mixture == mixture and s.d_reg == "none"]
    return max(candidates, key=ranking_key)


#: the LabConfig fields each run of the grid sets itself (RunSpec)
_GRID_FIELDS = ("mixture", "objective", "d_reg", "seed")


def _parse_overrides(items: list[str]) -> dict:
    types = {f.name: f.type for f in fields(LabConfig)}
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.replace("-", "_")
        if not sep or name not in types:
            raise UsageError(f"--set {item!r}: expected NAME=VALUE with NAME a LabConfig field")
        if name in _GRID_FIELDS:  # each run's own: RunSpec.config would silently replace it
            choose = ("how many with --seeds (it runs seeds 0, 1, ...)" if name == "seed"
                      else f"them with --{name.replace('_', '-')}s")
            raise UsageError(f"--set {item!r}: the sweep sets {name} for each run; choose {choose}")
        kind = types[name]
        try:
            out[name] = value if kind == "str" else (float(value) if kind == "float" else int(value))
        except ValueError:
            raise UsageError(f"--set {item!r}: {value!r} is not a valid {kind}") from None
    return out


def _check_arguments(args) -> None:
    """UsageError for settings the sweep would only trip over after its runs."""
    if args.seeds < 1 or args.best_seeds < 1:
        raise UsageError(f"--seeds and --best-seeds must be at least 1, got {args.seeds} and {args.best_seeds}")
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if os.path.isdir(args.out):
        raise UsageError(f"--out {args.out!r} is a directory; give the Markdown file to write, "
                         f"e.g. {os.path.join(args.out, 'lab-sweep.md')}")
    if os.path.exists(args.out) and not os.access(args.out, os.W_OK):
        raise UsageError(f"--out {args.out!r} is not writable; pick a path you can write to")
    for flag, given, folder in (("--out", args.out, os.path.dirname(os.path.abspath(args.out))),
                                ("--cache", args.cache, os.path.abspath(args.cache))):
        existing = folder  # the folder, or the deepest of its parents that exists (the rest is created)
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise UsageError(f"{flag} {given!r}: {existing} is a file, not a folder; pick another path")
        if not os.access(existing, os.W_OK):
            raise UsageError(f"{flag} {given!r}: folder {existing} is not writable; pick a path you can write to")
    if args.figure:
        from translate.cli.lab import check_plot_path

        check_plot_path(args.figure, "--figure")
        if args.figure_mixture is None:
            args.figure_mixture = "grid25" if "grid25" in args.mixtures else args.mixtures[0]
        if args.figure_mixture not in args.mixtures:
            raise UsageError(f"--figure-mixture {args.figure_mixture} is not among --mixtures {' '.join(args.mixtures)}")
        if "none" not in args.d_regs:
            raise UsageError("--figure shows the most collapsed run without a D regularizer: add none to --d-regs")


def main(argv: list[str] | None = None) -> int:
    from translate.cli.common import OneLineParser

    # A mistyped flag or value: one line (a UsageError, answered below), not the whole usage text.
    parser = OneLineParser(prog="python -m translate.lab.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="Markdown file to write")
    parser.add_argument("--cache", default="checkpoints/lab-sweep", help="folder of per-run JSON results")
    parser.add_argument("--workers", type=int, default=1, help="processes, one torch thread each")
    parser.add_argument("--mixtures", nargs="+", default=list(MIXTURE_NAMES), choices=MIXTURE_NAMES)
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVE_CHOICES), choices=OBJECTIVE_CHOICES)
    parser.add_argument("--d-regs", nargs="+", default=list(SWEEP_D_REGS))
    parser.add_argument("--seeds", type=int, default=SWEEP_SEEDS)
    parser.add_argument("--best-seeds", type=int, default=BEST_SEEDS)
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="LabConfig overrides for every run")
    parser.add_argument("--figure", metavar="FILE.png", help="also draw the best and the most collapsed run (seed 0)")
    parser.add_argument("--figure-mixture", choices=MIXTURE_NAMES,
                        help="the mixture the figure shows (default: grid25 when swept, else the first swept)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help
        return int(stop.code or 0)
    except UsageError as error:
        print(f"python -m translate.lab.sweep: error: {error}", file=sys.stderr)
        return 2
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    try:
        overrides = _parse_overrides(args.set)
        _check_arguments(args)  # before hours of runs, not after them
        started = time.perf_counter()
        specs = grid_specs(args.mixtures, args.objectives, args.d_regs, range(args.seeds))
        for spec in specs[:: args.seeds]:  # every setting checked before the first run, not in it
            try:
                spec.config(overrides).validate()
            except UsageError as error:  # it names translate-lab's flag (--g-depth); here it came from --set
                raise UsageError(re.sub(r"^--([a-z0-9-]+)", lambda m: f"--set {m[1].replace('-', '_')}",
                                        str(error))) from None
        results = run_all(specs, args.cache, workers=args.workers, overrides=overrides, log=log)
        summaries = summarize(results)
        best: dict[str, Summary] = {}
        for mixture in args.mixtures:
            chosen = pick_best(summaries, mixture)
            log(f"best on {mixture}: {chosen.objective}, d-reg {chosen.d_reg}; running {args.best_seeds} seeds")
            best_specs = grid_specs([mixture], [chosen.objective], [chosen.d_reg], range(args.best_seeds))
            best[mixture] = summarize(run_all(best_specs, args.cache, workers=args.workers, overrides=overrides, log=log))[0]
        text = render_markdown(summaries, best, overrides, time.perf_counter() - started)
        out_dir = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(out_dir, exist_ok=True)
        with open(args.out, "w") as f:  # first: the tables stand even if the figure fails
            f.write(text)
        log(f"wrote {args.out}")
        if args.figure:
            good, bad = best[args.figure_mixture], worst_unregularized(summaries, args.figure_mixture)
            draw_figure(
                args.figure,
                args.figure_mixture,
                [
                    (f"{bad.objective}, d-reg none", RunSpec(args.figure_mixture, bad.objective, "none", 0)),
                    (f"{good.objective}, d-reg {good.d_reg}", RunSpec(args.figure_mixture, good.objective, good.d_reg, 0)),
                ],
                overrides,
                log=log,
            )
            log(f"wrote {args.figure}")
    except UsageError as error:
        print(f"python -m translate.lab.sweep: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        cached = os.path.isdir(args.cache) and any(name.endswith(".json") for name in os.listdir(args.cache))
        kept = (f"the runs that finished are cached in {args.cache}: the same command continues from them" if cached
                else "no run had finished, so nothing was cached")
        print(f"python -m translate.lab.sweep: interrupted; {kept}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
