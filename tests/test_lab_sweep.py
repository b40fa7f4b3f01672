"""The sweep's bookkeeping: mean ± standard error, the choice of the best configuration, resuming."""

import json
import math
from dataclasses import asdict

import pytest

from translate.lab import sweep
from translate.lab.sweep import RunSpec, mean_and_standard_error, pick_best, render_markdown, run_all, summarize


def _result(mixture="grid25", objective="nsgan", d_reg="none", seed=0, modes=25, hq=0.95, rkl=0.02, seconds=10.0):
    return {
        "mixture": mixture,
        "objective": objective,
        "d_reg": d_reg,
        "seed": seed,
        "modes": modes,
        "strict_modes": modes,
        "num_modes": 25 if mixture == "grid25" else 8,
        "high_quality_fraction": hq,
        "reverse_kl": rkl,
        "seconds": seconds,
    }


def test_mean_and_standard_error_use_the_sample_standard_deviation():
    mean, se = mean_and_standard_error([1, 2, 3, 4])
    assert mean == 2.5
    assert se == pytest.approx(math.sqrt(((1.5**2 + 0.5**2) * 2 / 3) / 4))
    assert mean_and_standard_error([7]) == (7.0, 0.0)


def test_summaries_group_by_configuration_and_skip_missing_reverse_kl():
    results = [
        _result(seed=0, modes=25, rkl=0.02),
        _result(seed=1, modes=20, rkl=None, hq=0.0),
        _result(objective="hinge", seed=0, modes=1, rkl=math.log(25)),
    ]
    nsgan, hinge = summarize(results)
    assert (nsgan.objective, nsgan.seeds, hinge.seeds) == ("nsgan", 2, 1)
    assert nsgan.modes == (22.5, 2.5)
    assert nsgan.reverse_kl == (0.02, 0.0) and nsgan.reverse_kl_missing == 1
    assert nsgan.high_quality[0] == pytest.approx(47.5)
    assert nsgan.all_modes_seeds == 1


def test_best_configuration_has_most_modes_then_least_reverse_kl():
    results = [
        _result(objective="nsgan", modes=25, rkl=0.10),
        _result(objective="lsgan", modes=25, rkl=0.03),
        _result(objective="hinge", modes=24, rkl=0.001),
        _result(mixture="ring8", objective="wgan", modes=8, rkl=0.5),
    ]
    assert pick_best(summarize(results), "grid25").objective == "lsgan"
    assert pick_best(summarize(results), "ring8").objective == "wgan"


def test_interrupted_sweep_resumes_from_cached_runs(tmp_path, monkeypatch):
    calls = []

    class FakeResult:
        def __init__(self, config):
            self.config = config

        def to_dict(self):
            return {**_result(self.config.mixture, self.config.objective, self.config.d_reg, self.config.seed), "config": asdict(self.config)}

    def fake_train(config):
        calls.append(config.seed)
        return FakeResult(config)

    monkeypatch.setattr("translate.lab.train.train_mog", fake_train)
    specs = [RunSpec("ring8", "nsgan", "none", seed) for seed in range(3)]
    overrides = {"steps": 7}
    run_all(specs[:2], str(tmp_path), overrides=overrides, log=lambda m: None)  # "interrupted" after two
    assert calls == [0, 1]
    results = run_all(specs, str(tmp_path), overrides=overrides, log=lambda m: None)
    assert calls == [0, 1, 2]  # only the missing run trained
    assert [r["seed"] for r in results] == [0, 1, 2]
    assert json.loads((tmp_path / "ring8_nsgan_none_seed2.json").read_text())["config"]["steps"] == 7
    run_all(specs, str(tmp_path), overrides={"steps": 8}, log=lambda m: None)  # other settings: stale cache
    assert calls == [0, 1, 2, 0, 1, 2]
    # A result made by another version of the lab's training or metrics is trained again too.
    monkeypatch.setattr(sweep, "LAB_RESULT_VERSION", sweep.LAB_RESULT_VERSION + 1)
    run_all(specs[:1], str(tmp_path), overrides={"steps": 8}, log=lambda m: None)
    assert calls == [0, 1, 2, 0, 1, 2, 0]


@pytest.mark.parametrize("content", [b"null", b"[1, 2]", b'"text"', b"\xff\xfe{"])
def test_a_damaged_cached_result_is_trained_again(tmp_path, monkeypatch, content):
    # A cache file holding JSON that is not an object failed with an AttributeError traceback.
    calls = []

    class FakeResult:
        def __init__(self, config):
            self.config = config

        def to_dict(self):
            return {**_result(self.config.mixture, self.config.objective, self.config.d_reg, self.config.seed),
                    "config": asdict(self.config)}

    monkeypatch.setattr("translate.lab.train.train_mog", lambda config: calls.append(config.seed) or FakeResult(config))
    (tmp_path / "ring8_nsgan_none_seed0.json").write_bytes(content)
    results = run_all([RunSpec("ring8", "nsgan", "none", 0)], str(tmp_path), overrides={"steps": 7}, log=lambda m: None)
    assert calls == [0] and results[0]["seed"] == 0
    assert json.loads((tmp_path / "ring8_nsgan_none_seed0.json").read_text())["config"]["steps"] == 7


@pytest.mark.parametrize("received_by", ["process", "another_thread"])
def test_an_interrupted_sweep_stops_its_workers_and_says_how_to_continue(tmp_path, monkeypatch, capsys, received_by):
    # Ctrl-C printed a traceback, and the pool first trained every queued run (its shutdown waits). A Ctrl-C
    # that another thread of the sweep's process received was acted on only when a run finished.
    import os
    import signal
    import threading
    import time

    def slow_train(config):
        (tmp_path / f"started_{config.seed}").write_text(str(os.getpid()))
        time.sleep(60)
        (tmp_path / f"finished_{config.seed}").write_text("")  # only if the sweep waited for its workers

    monkeypatch.setattr("translate.lab.train.train_mog", slow_train)
    # Ctrl-C as a fresh process has it, whatever an earlier test in this process may have left (in two
    # whole-suite runs on a loaded machine the sweep never saw the signal; the cause was not found).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    def interrupt_once_both_runs_started():
        while len(list(tmp_path.glob("started_*"))) < 2:
            time.sleep(0.05)
        if received_by == "process":
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C reaches the sweep's process
        else:
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # ... and this thread, not the main one, gets it

    threading.Thread(target=interrupt_once_both_runs_started, daemon=True).start()
    try:
        code = sweep.main(["--out", str(tmp_path / "out.md"), "--cache", str(tmp_path / "c"), "--mixtures", "ring8",
                           "--objectives", "nsgan", "--d-regs", "none", "--seeds", "4", "--workers", "2"])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m translate.lab.sweep: interrupted;") and "Traceback" not in "\n".join(err)
    # No run had finished: it named a cache folder that was never made as where they were kept.
    assert err[-1].endswith("no run had finished, so nothing was cached") and not (tmp_path / "c").exists()
    assert sorted(p.name for p in tmp_path.glob("started_*")) == ["started_0", "started_1"]  # queued: not begun
    assert not list(tmp_path.glob("finished_*"))  # the running ones stopped, not waited for
    for pid in {int(p.read_text()) for p in tmp_path.glob("started_*")}:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_markdown_table_has_a_row_per_configuration_and_the_published_reference():
    results = [_result(seed=s) for s in range(3)] + [_result(objective="hinge", seed=s, modes=3) for s in range(3)]
    summaries = summarize(results)
    best = {"grid25": summarize([_result(seed=s) for s in range(10)])[0]}
    text = render_markdown(summaries, best, {}, 60.0)
    assert "| nsgan | none | 3 | 25.0 ± 0.0 |" in text
    assert "| hinge | none | 3 | 3.0 ± 0.0 |" in text
    assert "over 10 seeds" in text
    assert "PacGAN4 24.8 modes, 93.6% high quality, reverse KL 0.04" in text
    assert sweep.PACGAN_TABLE1["ring8"][0] == ("GAN", 6.3, 98.2, 0.45)
    assert "2,500 samples per run" in text
    # --set eval_samples=200: the header said 2,500 whatever the runs drew
    assert "200 samples per run" in render_markdown(summaries, best, {"eval_samples": 200}, 60.0)


def test_a_sweep_of_ten_seeds_or_more_still_has_its_table():
    results = [_result(seed=s) for s in range(12)]
    summaries = summarize(results)
    text = render_markdown(summaries, {"grid25": summaries[0]}, {}, 60.0)
    assert "## grid25" in text and "| nsgan | none | 12 | 25.0 ± 0.0 |" in text



@pytest.mark.parametrize("flags, needle", [
    (["--seeds", "0"], "--seeds and --best-seeds must be at least 1"),
    (["--mixtures", "ring8", "--figure-mixture", "grid25", "--figure", "{tmp}/f.png"], "is not among --mixtures ring8"),
    (["--d-regs", "sn", "--figure", "{tmp}/f.png"], "add none to --d-regs"),
    (["--figure", "{tmp}/missing/f.png"], "--figure '{tmp}/missing/f.png': folder {tmp}/missing does not exist"),
    (["--out", "{tmp}"], "--out '{tmp}' is a directory; give the Markdown file to write"),
    (["--out", "{tmp}/a_file/out.md"], "{tmp}/a_file is a file, not a folder"),
    (["--cache", "{tmp}/a_file"], "--cache '{tmp}/a_file': {tmp}/a_file is a file, not a folder"),
    (["--cache", "{tmp}/a_file/c"], "{tmp}/a_file is a file, not a folder"),
])
def test_settings_the_sweep_would_trip_over_after_its_runs_are_refused_first(tmp_path, capsys, monkeypatch, flags,
                                                                             needle):
    # These failed with a traceback after every run had trained (or, for the mixture, drew nothing).
    trained = []
    monkeypatch.setattr(sweep, "run_all", lambda *a, **k: trained.append(1) or [])
    # (--out and --cache: an IsADirectoryError or NotADirectoryError traceback after the runs, or after the first)
    (tmp_path / "a_file").write_text("")
    flags = [f.format(tmp=tmp_path) for f in flags]
    assert sweep.main(["--out", str(tmp_path / "out.md"), "--cache", str(tmp_path / "c"), *flags]) == 2
    err = capsys.readouterr().err
    assert needle.format(tmp=tmp_path) in err and len(err.strip().splitlines()) == 1 and not trained


@pytest.mark.parametrize("flags, needle", [(["--seeds", "x"], "argument --seeds: invalid int value: 'x'"),
                                          (["--mixtures", "ring9"], "argument --mixtures: invalid choice: 'ring9'"),
                                          (["--bogus"], "unrecognized arguments: --bogus")])
def test_a_mistyped_flag_is_one_line(tmp_path, capsys, flags, needle):
    # argparse printed its whole usage text (ten lines) before the error.
    assert sweep.main(["--out", str(tmp_path / "out.md"), *flags]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "--help" in err


# (named as the --set they came from: the sweep has no --g-depth flag)
@pytest.mark.parametrize("setting, needle", [("lr_g=nan", "error: --set lr_g must be >= 0, got nan"),
                                             ("gp_weight=-1", "error: --set gp_weight must be >= 0"),
                                             ("g_depth=-1", "error: --set g_depth must be >= 0"),
                                             ("beta2=1", "error: --set beta2 must be >= 0 and below 1"),
                                             ("lr_decay_from=1.5", "error: --set lr_decay_from must be between 0 and 1"),
                                             ("sr_refresh_every=0", "error: --set sr_refresh_every must be >= 1"),
                                             # (these each run sets: the value was dropped without a word)
                                             ("seed=5", "the sweep sets seed for each run; choose how many with --seeds"),
                                             ("d-reg=sn", "choose them with --d-regs"),
                                             ("objective=hinge", "choose them with --objectives"),
                                             ("mixture=grid25", "choose them with --mixtures")])
def test_a_setting_no_run_could_use_is_refused_before_the_runs(tmp_path, capsys, monkeypatch, setting, needle):
    # --set lr_g=nan failed with torch's ValueError traceback in the first run; g_depth=-1 trained a
    # network without hidden layers and the table said "-1 hidden ReLU layers".
    monkeypatch.setattr("translate.lab.train.train_mog", lambda config: pytest.fail("trained"))
    assert sweep.main(["--out", str(tmp_path / "out.md"), "--cache", str(tmp_path / "c"), "--set", setting]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_the_defaults_are_valid():
    from translate.lab.config import LabConfig

    LabConfig().validate()


def test_the_figure_defaults_to_a_swept_mixture_and_the_tables_are_written_first(tmp_path, monkeypatch):
    results = [_result(mixture="ring8", d_reg=reg, seed=s) for reg in ("none", "sn") for s in range(2)]
    monkeypatch.setattr(sweep, "run_all", lambda specs, *a, **k: [
        r for r in results if any((r["d_reg"], r["seed"]) == (sp.d_reg, sp.seed) for sp in specs)])
    drawn = []

    def draw(path, mixture, specs, overrides=None, log=print):
        assert (tmp_path / "out.md").is_file()  # the tables stand even if drawing fails
        drawn.append(mixture)

    monkeypatch.setattr(sweep, "draw_figure", draw)
    assert sweep.main(["--out", str(tmp_path / "out.md"), "--cache", str(tmp_path / "c"), "--mixtures", "ring8",
                       "--d-regs", "none", "sn", "--seeds", "2", "--best-seeds", "2",
                       "--figure", str(tmp_path / "f.png")]) == 0
    assert drawn == ["ring8"]
