"""The progress lines of a training run: the rate and ETA follow the recent speed, not the run's average."""

from __future__ import annotations

import re

import pytest

from translate.train import logs
from translate.train.logs import Progress


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(logs.time, "perf_counter", fake)
    return fake


def lines(capsys) -> list[tuple[int, float, float, str]]:
    """(step, it/s, img/s, ETA) of each plain progress line written so far."""
    pattern = re.compile(r"step (\d+)/\d+\s+([\d.]+) it/s\s+([\d.]+) img/s\s+ETA (\S+)")
    return [(int(m[1]), float(m[2]), float(m[3]), m[4]) for m in pattern.finditer(capsys.readouterr().err)]


def test_rate_and_eta_follow_the_recent_speed_after_a_pause(clock, capsys):
    progress = Progress(total=1000, initial=0, batch_images=4, plain_every_s=10.0)
    clock.now += 30.0  # the first step: warm-up, 30 s
    progress.update(1)
    step = 1
    for _ in range(60):  # one step per second
        clock.now += 1.0
        step += 1
        progress.update(step)
    clock.now += 600.0  # the run is paused for ten minutes (SIGSTOP, a busy machine)
    for _ in range(120):
        clock.now += 1.0
        step += 1
        progress.update(step)
    out = lines(capsys)
    assert out[0][0] == 1  # a line at once, so a log shows the run started
    last_step, rate, images, eta = out[-1]
    average = (last_step - 0) / (clock.now - 1000.0)
    assert average < 0.3  # what an average since the start would report
    assert rate == pytest.approx(1.0, rel=0.05) and images == pytest.approx(4 * rate, rel=0.01)
    h, m, s = map(int, eta.split(":"))
    assert h * 3600 + m * 60 + s == pytest.approx((1000 - last_step) / rate, rel=0.01)  # rate shown rounded
    # Just after the pause the line said the run had slowed down (the pause is in its interval).
    # The line just after the pause shows the slowdown; the later ones recover the steady rate.
    assert [r for s_, r, _, _ in out if s_ == 62] == [pytest.approx(0.7, abs=0.02)]
    assert out[0][3] == "?"  # no ETA from the warm-up step alone


def test_the_first_lines_use_the_average_until_a_recent_interval_exists(clock, capsys):
    progress = Progress(total=10, initial=4, batch_images=1, plain_every_s=10.0)  # a resumed run
    clock.now += 2.0
    progress.update(5)
    first = lines(capsys)
    assert first == [(5, pytest.approx(0.5, abs=0.01), pytest.approx(0.5, abs=0.01), "?")]
    clock.now += 5.0
    progress.update(10)  # the last step always prints; its rate covers steps 5 -> 10
    (step, rate, _, eta), = lines(capsys)
    assert (step, rate, eta) == (10, pytest.approx(1.0), "0:00:00")


def test_plain_lines_show_the_latest_logged_losses_between_log_steps(clock, capsys):
    progress = Progress(total=100, initial=0, batch_images=1, plain_every_s=10.0)
    clock.now += 1.0
    progress.update(1, {"loss_G": 1.5, "loss_D": 0.7})  # a logged step
    for step in range(2, 40):  # steps in between bring no losses
        clock.now += 1.0
        progress.update(step)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) > 2 and all("loss_G=1.500 loss_D=0.700" in line for line in err)


def test_a_resumed_log_keeps_its_history_up_to_the_checkpoint_and_hides_the_rest(tmp_path):
    import json

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from translate.train.logs import MetricsLog, TensorBoard

    log, tb = MetricsLog(tmp_path / "metrics.jsonl"), TensorBoard(tmp_path / "tb")
    for step in range(10, 101, 10):
        log.write({"step": step, "loss": 1.0})
        tb.scalars({"loss": 1.0}, step)
    log.close(), tb.close()
    # Resumed from a checkpoint at step 50: steps 60.. are trained again.
    log, tb = MetricsLog(tmp_path / "metrics.jsonl", keep_through_step=50), TensorBoard(tmp_path / "tb", resumed_at=50)
    for step in (60, 70):
        log.write({"step": step, "loss": 2.0})
        tb.scalars({"loss": 2.0}, step)
    log.close(), tb.close()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["loss"]) for r in lines] == [(s, 1.0) for s in (10, 20, 30, 40, 50)] + [(60, 2.0), (70, 2.0)]
    events = EventAccumulator(str(tmp_path / "tb")).Reload().Scalars("loss")
    assert [(e.step, e.value) for e in events] == [(s, 1.0) for s in (10, 20, 30, 40, 50)] + [(60, 2.0), (70, 2.0)]


def test_a_resumed_log_drops_damaged_lines_instead_of_stopping_the_run(tmp_path):
    import json

    from translate.train.logs import MetricsLog

    path = tmp_path / "metrics.jsonl"
    # a crash (or a hand edit) left bytes that are not UTF-8, records that are not objects, a step that
    # is not a number, half a line
    path.write_bytes(b'{"step": 10, "loss": 1.0}\n\xff\xfe garbage\n[1]\nnull\n{"step": "20"}\n'
                     b'{"step": 20, "loss": 1.0}\n{"step": 30, "lo')
    log = MetricsLog(path, keep_through_step=20)
    log.write({"step": 30, "loss": 2.0})
    log.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [{"step": 10, "loss": 1.0}, {"step": 20, "loss": 1.0}, {"step": 30, "loss": 2.0}]


def test_a_run_measured_to_need_more_than_a_day_shows_its_hint_once(clock, capsys):
    slow = Progress(total=200_000, initial=0, batch_images=1, plain_every_s=10.0, long_run_hint="try --preset quick")
    fast = Progress(total=2_000, initial=0, batch_images=1, plain_every_s=10.0, long_run_hint="never shown")
    for step in range(1, 200):  # one step per second: 200000 steps need 2.3 days, 2000 steps half an hour
        clock.now += 1.0
        slow.update(step)
        fast.update(step)
        err = capsys.readouterr().err
        hints = [line for line in err.splitlines() if "more;" in line]
        if step < Progress.HINT_AFTER_S:  # not from the warm-up alone
            assert not hints
        elif step == Progress.HINT_AFTER_S:
            assert hints == ["at this speed the run needs about 2 days more; try --preset quick"]
        else:
            assert not hints  # once
