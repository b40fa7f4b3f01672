"""--resume and bad settings never cost a run: a resume that state.pt cannot serve (other networks, another
optimizer or pool size, a damaged file, another model, a step already passed) and mistyped settings are
refused in one line before anything is written, and the run stays resumable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests._data_helpers import make_unaligned
from tests.test_pix2pix import SMALL, train_cli
from tests.toy_training import ToyModel, ToyPairs
from translate.data.synthetic import write_synthetic
from translate.errors import UsageError
from translate.train.config import TrainConfig
from translate.train.loop import fit
from translate.train.precision import Precision

CYCLEGAN_TINY = ["--size", 32, "--netG", "resnet_2blocks", "--ngf", 4, "--ndf", 4, "--workers", 0, "--log-every", 1,
                 "--sample-every", 1000, "--amp", "off", "--no-tensorboard", "--pool-size", 2]


def cli(model: str, *args) -> int:
    from translate.cli.train import main

    return main([model, *map(str, args)])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("translate-train: error: "), err
    return err[0]


@pytest.fixture(scope="module")
def edges(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "edges"
    write_synthetic("synth-edges2landscape", root, n_train=4, n_test=2, size=64, seed=0)
    return root


@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory, edges) -> Path:
    """A finished 2-step pix2pix run (state.pt, config.json, G.safetensors)."""
    ckpt = tmp_path_factory.mktemp("pix2pix")
    assert train_cli("--data", edges, "--checkpoints", ckpt, "--name", "run", "--max-steps", 2, *SMALL) == 0
    return ckpt / "run"


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory) -> Path:
    """A finished 2-step CycleGAN run with history pools of 2."""
    data = make_unaligned(tmp_path_factory.mktemp("unpaired") / "tiny2set", {"trainA": 3, "trainB": 3, "testA": 1, "testB": 1},
                          size=(36, 36))
    ckpt = tmp_path_factory.mktemp("cyclegan")
    assert cli("cyclegan", "--data", data, "--checkpoints", ckpt, "--name", "run", "--max-steps", 2, *CYCLEGAN_TINY) == 0
    return ckpt / "run"


def copy_run(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ckpt" / run.name
    shutil.copytree(run, copy)
    return copy


def files(run: Path) -> dict:
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}


# ---- settings that change what state.pt holds ----------------------------------------------------------

@pytest.mark.parametrize("flags, named", [
    (["--ngf", 16], "--ngf 16"),
    (["--norm", "instance"], "--norm instance"),
    (["--d-reg", "sn"], "--d-reg sn"),
    (["--netD", "pixel"], "--netD pixel"),
    (["--objective", "wgan"], "--objective wgan"),  # the same networks, but RMSprop's state instead of Adam's
])
def test_a_resume_that_changes_what_state_pt_holds_is_refused_before_anything_is_written(
        pix2pix_run, tmp_path, capsys, flags, named):
    run = copy_run(pix2pix_run, tmp_path)
    before = files(run)
    capsys.readouterr()
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3, *flags) == 2
    error = one_line_error(capsys)
    assert named in error and "--max-steps" not in error and "another --name" in error
    assert files(run) == before


@pytest.mark.parametrize("resume", [False, True])
def test_a_finished_run_without_state_pt_is_never_trained_over(pix2pix_run, edges, tmp_path, capsys, resume):
    # state.pt removed to save space: the exported generator is all that is left of the run.
    run = copy_run(pix2pix_run, tmp_path)
    (run / "state.pt").unlink()
    before = files(run)
    capsys.readouterr()
    assert train_cli("--data", edges, "--checkpoints", run.parent, "--name", "run", "--max-steps", 1, *SMALL,
                     *(["--resume"] if resume else [])) == 2
    error = one_line_error(capsys)
    assert "G.safetensors" in error and "another --name" in error
    assert files(run) == before


def test_after_a_refused_resume_the_run_resumes_as_before(pix2pix_run, tmp_path, capsys):
    run = copy_run(pix2pix_run, tmp_path)
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3, "--ngf", 16) == 2
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["ngf"] == 8 and config["max_steps"] == 3


def test_a_resume_may_change_what_only_steers_the_run(pix2pix_run, tmp_path):
    run = copy_run(pix2pix_run, tmp_path)
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3, "--log-every", 1,
                     "--checkpoint-every", 5, "--no-export") == 0
    assert json.loads((run / "config.json").read_text())["max_steps"] == 3


def test_a_resume_on_other_data_says_so(pix2pix_run, edges, tmp_path, capsys):
    run = copy_run(pix2pix_run, tmp_path)
    other = tmp_path / "edges copy"
    shutil.copytree(edges, other)
    capsys.readouterr()
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3, "--data", other,
                     "--no-export") == 0
    assert f"trained on {edges} so far and continues on {other}" in capsys.readouterr().err


def test_a_resume_that_changes_a_training_setting_says_so(pix2pix_run, tmp_path, capsys):
    # A new --batch-size or --lr was taken without a word; the run's record then read as if it had been
    # trained so throughout.
    run = copy_run(pix2pix_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    capsys.readouterr()
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3, "--no-export") == 0
    assert "continues with" not in capsys.readouterr().err  # only steering flags: nothing to say
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 4, "--no-export",
                     "--batch-size", config["batch_size"] + 1, "--lr", 1e-4) == 0
    err = capsys.readouterr().err
    assert f"continues with batch_size {config['batch_size'] + 1} (was {config['batch_size']}), lr 0.0001 (was {config['lr']})" in err


def test_a_preset_named_on_resume_is_not_recorded_as_the_runs(cyclegan_run, tmp_path, capsys):
    # The run's saved settings sit above a preset: config.json said "quick" of a run that never was.
    run = copy_run(cyclegan_run, tmp_path)
    before = json.loads((run / "config.json").read_text())
    assert before["preset"] is None
    capsys.readouterr()
    assert cli("cyclegan", "--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3, "--no-export",
               "--preset", "quick") == 0
    assert "--preset quick changes nothing on --resume" in capsys.readouterr().err
    after = json.loads((run / "config.json").read_text())
    from translate.train.config import RUN_CONTROLS

    assert after["preset"] is None and {k: v for k, v in after.items() if k not in RUN_CONTROLS} == {
        k: v for k, v in before.items() if k not in RUN_CONTROLS}


def test_printed_commands_quote_names_with_spaces(pix2pix_run, tmp_path, capsys):
    run = tmp_path / "my runs" / "first try"
    shutil.copytree(pix2pix_run, run)
    capsys.readouterr()
    assert cli("cyclegan", "--checkpoints", run.parent, "--name", "first try", "--resume") == 2
    assert f"--name 'first try' --checkpoints '{run.parent}' --resume" in one_line_error(capsys)


def test_a_second_training_in_the_same_run_folder_is_refused(pix2pix_run, edges, tmp_path, capsys):
    import subprocess
    import sys

    run = copy_run(pix2pix_run, tmp_path)
    # A training in another terminal holds the lock (the same code, in another process).
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from translate.cli.train import hold_run_lock; "
                               f"lock = hold_run_lock(Path({str(run)!r})); print('held', flush=True); time.sleep(120)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = files(run)
        capsys.readouterr()
        assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3) == 2
        assert f"another translate-train (process {holder.pid}) is training in" in one_line_error(capsys)
        # without --resume too: not told to add --resume (which the lock would then refuse)
        assert train_cli("--data", edges, "--checkpoints", run.parent, "--name", "run", "--max-steps", 3) == 2
        assert f"another translate-train (process {holder.pid}) is training in" in one_line_error(capsys)
        assert files(run) == before
    finally:
        holder.kill()
        holder.wait()
    # The first one has ended (killed: the lock goes with the process): the run continues.
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3, "--no-export") == 0


def test_a_file_system_without_locks_does_not_stop_training(tmp_path, monkeypatch):
    import errno
    import fcntl

    from translate.cli.train import hold_run_lock

    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "lockf", no_locks)
    assert hold_run_lock(tmp_path) is None


def test_a_resume_with_new_optimizer_settings_trains_with_them(pix2pix_run, tmp_path):
    from translate.train.loop import STATE_FILE
    from translate.train.schedules import lr_multiplier

    run = copy_run(pix2pix_run, tmp_path)
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3, "--log-every", 1,
                     "--lr", 1e-3, "--beta1", 0.9, "--weight-decay", 1e-4, "--no-export") == 0
    assert json.loads((run / "config.json").read_text())["lr"] == 1e-3
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    # The step after the resume trained at the new lr, where the schedule (now 3 steps long) has got to,
    # not at the saved 2e-4.
    assert last["step"] == 3
    assert last["lr_G"] == pytest.approx(1e-3 * lr_multiplier("linear", 3, constant_fraction=0.5)(2))
    state = torch.load(run / STATE_FILE, weights_only=True)
    group = state["g"]["optimizer"]["param_groups"][0]
    assert group["betas"] == (0.9, 0.999) and group["weight_decay"] == 1e-4 and group["initial_lr"] == 1e-3


def test_a_resume_with_another_pool_size_is_refused(cyclegan_run, tmp_path, capsys):
    run = copy_run(cyclegan_run, tmp_path)
    before = files(run)
    capsys.readouterr()
    assert cli("cyclegan", "--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3, "--pool-size", 3) == 2
    assert "--pool-size 3" in one_line_error(capsys)
    assert files(run) == before


def test_a_resume_with_another_model_names_the_one_the_run_was_trained_with(cyclegan_run, tmp_path, capsys):
    run = copy_run(cyclegan_run, tmp_path)
    capsys.readouterr()
    assert cli("discogan", "--checkpoints", run.parent, "--name", "run", "--resume") == 2
    error = one_line_error(capsys)
    assert "trained with cyclegan" in error and f"translate-train cyclegan --name run --checkpoints {run.parent} --resume" in error


def test_a_resume_to_a_step_already_passed_is_refused(pix2pix_run, tmp_path, capsys):
    run = copy_run(pix2pix_run, tmp_path)
    before = files(run)
    capsys.readouterr()
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 1) == 2
    assert "already at step 2" in one_line_error(capsys)
    assert files(run) == before


# ---- damaged files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_a_damaged_state_pt_is_one_line_that_names_what_is_intact(pix2pix_run, tmp_path, capsys, damage):
    run = copy_run(pix2pix_run, tmp_path)
    state = (run / "state.pt").read_bytes()
    (run / "state.pt").write_bytes({"truncated": state[: len(state) // 2], "empty": b"",
                                    "garbage": bytes(range(256)) * 40}[damage])
    before = files(run)
    capsys.readouterr()
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3) == 2
    error = one_line_error(capsys)
    assert "state.pt is damaged" in error and "G.safetensors" in error and "another --name" in error
    assert files(run) == before


@pytest.mark.parametrize("text", ["{bad", "[]", None])
def test_a_damaged_config_json_falls_back_to_the_settings_in_state_pt(pix2pix_run, tmp_path, capsys, text):
    run = copy_run(pix2pix_run, tmp_path)
    if text is None:
        (run / "config.json").unlink()
    else:
        (run / "config.json").write_text(text)
    capsys.readouterr()
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3, "--no-export") == 0
    assert "resuming with the settings saved in" in capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config["ngf"] == 8 and config["max_steps"] == 3


# ---- settings checked before anything is written -----------------------------------------------------

@pytest.mark.parametrize("flags", [["--spectral-every", 0], ["--spectral-every", -1], ["--beta1", 2], ["--beta2", 1],
                                   ["--instance-noise", -0.1], ["--lr", "nan"], ["--lr", "inf"], ["--lr-d", "nan"],
                                   ["--lambda-L1", "nan"], ["--instance-noise", "nan"], ["--weight-decay", "inf"],
                                   ["--seed", 2**70], ["--seed", -1], ["--size", 100000], ["--load-size", 100000]])
def test_out_of_range_settings_are_refused_before_the_run_folder_exists(edges, tmp_path, capsys, flags):
    assert train_cli("--data", edges, "--checkpoints", tmp_path, "--name", "r", "--max-steps", 1, *SMALL, *flags) == 2
    assert flags[0] in one_line_error(capsys)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("settings, expected", [
    ({"batch_size": "abc"}, "'batch_size' in {file} must be an integer"),
    ({"batch_size": 2.0}, "'batch_size' in {file} must be an integer"),
    ({"lr": "0.1"}, "'lr' in {file} must be a number"),
    ({"export": "false"}, "'export' in {file} must be true or false"),
    ({"flip": "no"}, "'flip' in {file} must be true or false"),
    ({"objective": "sigmoid"}, "'objective' in {file} must be one of"),
    ({"load_size": "286"}, "'load_size' in {file} must be an integer or null"),
    ([], "{file} must hold a table of settings"),
])
def test_config_file_values_are_checked_against_the_fields_types(edges, tmp_path, capsys, settings, expected):
    file = tmp_path / "settings.json"
    file.write_text(json.dumps(settings))
    assert train_cli("--data", edges, "--checkpoints", tmp_path, "--name", "r", "--max-steps", 1, "--config", file,
                     *SMALL) == 2
    assert expected.format(file=file) in one_line_error(capsys)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name, expected", [("settings.yaml", "YAML is not read; write the same keys as JSON"),
                                            ("folder", "is a folder; pass a .json or .toml file")])
def test_a_config_file_in_yaml_or_a_folder_says_what_to_pass(edges, tmp_path, capsys, name, expected):
    file = tmp_path / name
    file.mkdir() if name == "folder" else file.write_text("lr: 0.001\n")
    assert train_cli("--data", edges, "--checkpoints", tmp_path, "--name", "r", "--max-steps", 1, "--config", file,
                     *SMALL) == 2
    assert expected in one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_config_file_values_of_the_right_types_are_taken(edges, tmp_path):
    file = tmp_path / "settings.toml"
    file.write_text('lr = 1\nlr_d = 0.001\nflip = false\nload-size = 36\n')
    assert train_cli("--data", edges, "--checkpoints", tmp_path, "--name", "r", "--max-steps", 1, "--config", file,
                     *SMALL, "--no-export") == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (config["lr"], config["lr_d"], config["flip"], config["load_size"]) == (1.0, 0.001, False, 36)
    assert isinstance(config["lr"], float)


# ---- fit() itself, for callers other than translate-train ---------------------------------------------

def fit_toy(run: Path, norm: str = "instance", **overrides):
    cfg = TrainConfig(data="toy", **{"workers": 0, "log_every": 1, "sample_every": 1000, "checkpoint_every": 1000,
                                     "tensorboard": False, "max_steps": 2, "batch_size": 4, **overrides})
    torch.manual_seed(0)
    return fit(ToyModel("lsgan", norm), ToyPairs(), cfg, run, precision=Precision(torch.device("cpu"), None, False),
               log=lambda *a: None)


def test_fit_refuses_a_state_that_does_not_fit_or_is_damaged_or_passed(tmp_path):
    fit_toy(tmp_path)
    with pytest.raises(UsageError, match="does not fit"):
        fit_toy(tmp_path, norm="batch", resume=True, max_steps=3)
    with pytest.raises(UsageError, match="already at step 2"):
        fit_toy(tmp_path, resume=True, max_steps=1)
    (tmp_path / "state.pt").write_bytes(b"")
    with pytest.raises(UsageError, match="damaged"):
        fit_toy(tmp_path, resume=True, max_steps=3)


def test_images_too_small_for_the_discriminator_are_refused_before_the_run_folder_is_made(tmp_path, capsys):
    data = make_unaligned(tmp_path / "tiny2set", {"trainA": 2, "trainB": 2, "testA": 1, "testB": 1}, size=(16, 16))
    capsys.readouterr()
    assert cli("discogan", "--data", data, "--checkpoints", tmp_path / "ck", "--name", "r", "--size", 16,
               "--max-steps", 1, "--workers", 0) == 2
    error = one_line_error(capsys)
    assert "at least 64x64" in error and "--size 64" in error
    assert not (tmp_path / "ck").exists()


def test_a_resume_whose_dataset_now_names_its_labels_otherwise_is_refused(tmp_path, capsys):
    from _app_helpers import train_tiny_run

    run = train_tiny_run(tmp_path, labels=["day", "night"], name="labelled")
    metadata = tmp_path / "data_labelled" / "metadata.jsonl"
    metadata.write_text(metadata.read_text().replace('"day"', '"dawn"'))
    before = files(run)
    capsys.readouterr()
    assert cli("pix2pix", "--checkpoints", run.parent, "--name", "labelled", "--resume", "--max-steps", 3) == 2
    assert "trained with other conditions" in one_line_error(capsys)
    assert files(run) == before


def test_a_resume_with_another_condition_flag_names_the_flag_not_the_metadata(tmp_path, capsys):
    # It said the dataset's metadata had changed and to "put the metadata back as it was", which it was.
    from _app_helpers import train_tiny_run

    run = train_tiny_run(tmp_path, labels=["day", "night"], name="labelled")
    metadata = tmp_path / "data_labelled" / "metadata.jsonl"
    metadata.write_text(metadata.read_text().replace("}\n", ', "text": "a scene"}\n'))  # captions beside the labels
    before = files(run)
    capsys.readouterr()
    assert cli("pix2pix", "--checkpoints", run.parent, "--name", "labelled", "--resume", "--max-steps", 3,
               "--condition", "text") == 2
    err = one_line_error(capsys)
    assert "with --condition text: it was trained with --condition label (conditioned on labels)" in err
    assert "metadata" not in err and files(run) == before


def test_a_run_made_under_an_earlier_preset_resumes_as_it_was_and_says_so(monkeypatch, capsys, tmp_path):
    import translate.cli.train as train_cli_module
    from translate.models import model_spec
    from translate.models.cyclegan import CycleGANConfig

    quick = CycleGANConfig.PRESETS["quick"]
    then = {**quick, "netG": "resnet_6blocks"}  # the preset when the run began
    # started with --preset quick --max-steps 50: the user's own choice over the preset
    saved = {**then, "max_steps": 50, "data": "synth-photo2vangogh", "name": "demo", "preset": "quick"}
    monkeypatch.setattr(train_cli_module, "saved_settings", lambda spec, run_dir: dict(saved))
    spec = model_spec("cyclegan")
    given = {"data": "synth-photo2vangogh", "name": "demo", "preset": "quick", "resume": True,
             "checkpoints": str(tmp_path)}
    run_dir = tmp_path / "demo"
    run_dir.mkdir()
    cfg = train_cli_module.resolve_config(spec, given)
    assert cfg.netG == "resnet_6blocks" and cfg.max_steps == 50  # the run's own settings win on --resume
    assert capsys.readouterr().err == "", "no record of the preset as it was: nothing to compare"
    (run_dir / "run.json").write_text(json.dumps({"model": "cyclegan", "preset": {"name": "quick", "settings": then}}))
    train_cli_module.resolve_config(spec, given)
    err = capsys.readouterr().err
    assert "resumes with its own settings (netG resnet_6blocks)" in err and f"netG {quick['netG']}" in err
    assert "max_steps" not in err  # chosen by the user, not a change of the preset
    train_cli_module.resolve_config(spec, {**given, "netG": "resnet_6blocks"})  # asked for: nothing to say
    assert capsys.readouterr().err == ""


def test_a_setting_added_after_a_run_began_keeps_its_old_behaviour_on_resume(monkeypatch, tmp_path):
    import translate.cli.train as train_cli_module
    from translate.models import model_spec

    run_dir = tmp_path / "old_captions"
    run_dir.mkdir()
    old = {"data": "synth-daytime", "name": "old_captions", "condition": "text"}  # saved before word dropout
    (run_dir / "config.json").write_text(json.dumps(old))
    given = {"data": "synth-daytime", "name": "old_captions", "resume": True, "checkpoints": str(tmp_path)}
    spec = model_spec("pix2pix")
    assert train_cli_module.resolve_config(spec, given).word_dropout == 0.0
    assert train_cli_module.resolve_config(spec, {**given, "word_dropout": 0.1}).word_dropout == 0.1
    assert train_cli_module.resolve_config(spec, {**given, "resume": False, "name": "new"}).word_dropout == 0.05


@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signalled_run_saves_and_exits_with_the_shells_code_for_that_signal(edges, tmp_path, monkeypatch, capsys,
                                                                              signum, code):
    # 128 + the signal, as if it had ended the process: a job script tells Ctrl-C (130) from the
    # SIGTERM of timeout, SLURM or systemd (143), and the run is resumable either way.
    import os

    from translate.train import loop

    enter = loop.StopRequest.__enter__

    def signalled_on_entry(self):
        enter(self)
        os.kill(os.getpid(), signum)  # handled: the loop finishes its first step, saves and returns
        return self

    monkeypatch.setattr(loop.StopRequest, "__enter__", signalled_on_entry)
    ckpt = tmp_path / "ckpt"
    assert train_cli("--data", edges, "--checkpoints", ckpt, "--name", "run", "--max-steps", 3, *SMALL) == code
    assert torch.load(ckpt / "run" / "state.pt", weights_only=False)["step"] == 1
    assert "--resume" in capsys.readouterr().err


def test_an_export_of_a_run_missing_one_of_its_generators_rebuilds_both_from_the_state(cyclegan_run, tmp_path):
    # Training writes G_A then G_B: a run killed between the two kept G_A alone, and the export
    # copied just that, without a word, although state.pt holds both.
    from translate.io.export import export_run

    run = copy_run(cyclegan_run, tmp_path)
    (run / "G_B.safetensors").unlink()
    said = []
    results = export_run(run, tmp_path / "out", log=said.append)
    assert sorted(r.role for r in results) == ["G_A", "G_B"] and {r.how for r in results} == {"from state.pt"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["G_A.safetensors", "G_B.safetensors"]
    assert any("G_B.safetensors missing" in line for line in said)


def test_a_resume_in_the_other_direction_is_refused(pix2pix_run, tmp_path, capsys):
    # The weights fit either way round: the A -> B generator went on learning B -> A without a word.
    run = copy_run(pix2pix_run, tmp_path)
    before = files(run)
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3,
                     "--direction", "b2a") == 2
    assert "cannot resume" in (line := one_line_error(capsys)) and "--direction b2a: it was trained a2b" in line
    assert files(run) == before


@pytest.mark.parametrize("name", [".", "..", "../outside", "runs/../../outside", "a/..", "C:outside", "/outside"])
def test_a_run_name_that_leaves_its_folder_is_refused_before_anything_is_written(tmp_path, capsys, name):
    # '--name .' wrote state.pt and config.json straight into the checkpoints folder; '../x' outside it.
    data = make_unaligned(tmp_path / "data", {"trainA": 2, "trainB": 2, "testA": 1, "testB": 1}, size=(36, 36))
    ckpt = tmp_path / "deep" / "ckpt"
    assert cli("cyclegan", "--data", data, "--checkpoints", ckpt, "--name", name, "--max-steps", 1, *CYCLEGAN_TINY) == 2
    assert "is not a folder name inside --checkpoints" in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_resume_from_another_folder_says_where_the_runs_data_was(tmp_path, capsys, monkeypatch):
    # config.json keeps --data as typed (relative); from elsewhere the message named only an unknown dataset.
    make_unaligned(tmp_path / "start" / "tiny", {"trainA": 2, "trainB": 2, "testA": 1, "testB": 1}, size=(36, 36))
    monkeypatch.chdir(tmp_path / "start")
    assert cli("cyclegan", "--data", "tiny", "--checkpoints", tmp_path / "ckpt", "--name", "run", "--max-steps", 1,
               *CYCLEGAN_TINY) == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    capsys.readouterr()
    assert cli("cyclegan", "--checkpoints", tmp_path / "ckpt", "--name", "run", "--resume", "--max-steps", 2) == 2
    error = one_line_error(capsys)
    assert "was trained on 'tiny' as given where it was started" in error and "add --data" in error
    assert cli("cyclegan", "--checkpoints", tmp_path / "ckpt", "--name", "run", "--resume", "--max-steps", 2,
               "--data", tmp_path / "start" / "tiny") == 0


@pytest.mark.parametrize("name", ["run/", "./run", "runs//run", "v1.2 try"])
def test_a_run_name_that_stays_inside_is_taken_as_the_folder_it_names(tmp_path, name):
    # A tab-completed 'run/' or './run' names a folder inside --checkpoints: not refused.
    import posixpath

    data = make_unaligned(tmp_path / "data", {"trainA": 2, "trainB": 2, "testA": 1, "testB": 1}, size=(36, 36))
    ckpt = tmp_path / "ckpt"
    assert cli("cyclegan", "--data", data, "--checkpoints", ckpt, "--name", name, "--max-steps", 1, *CYCLEGAN_TINY) == 0
    assert (ckpt / posixpath.normpath(name) / "state.pt").is_file()


def test_a_mistyped_data_on_resume_is_not_said_to_be_the_runs(tmp_path, capsys, monkeypatch):
    make_unaligned(tmp_path / "tiny", {"trainA": 2, "trainB": 2, "testA": 1, "testB": 1}, size=(36, 36))
    monkeypatch.chdir(tmp_path)
    assert cli("cyclegan", "--data", "tiny", "--checkpoints", "ckpt", "--name", "run", "--max-steps", 1,
               *CYCLEGAN_TINY) == 0
    capsys.readouterr()
    assert cli("cyclegan", "--checkpoints", "ckpt", "--name", "run", "--resume", "--max-steps", 2, "--data", "tinyy") == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # (after the note that the data changed)
    assert "unknown dataset 'tinyy'" in error and "as given where it was started" not in error



def test_a_moved_run_resumes_in_the_folder_it_was_found_in(pix2pix_run, tmp_path, capsys, monkeypatch):
    # config.json records --checkpoints as the run was started; a run moved (or copied from another
    # machine) was looked for there again: 'nothing to resume in OLD/run', or another run of that name
    # there was trained on with this one's settings.
    run = copy_run(pix2pix_run, tmp_path)
    monkeypatch.chdir(tmp_path)
    moved = tmp_path / "checkpoints" / "run"
    moved.parent.mkdir()
    run.rename(moved)
    (tmp_path / "ckpt" / "run").mkdir()  # where config.json's checkpoints points now: an unrelated folder
    config = json.loads((moved / "config.json").read_text())
    config["checkpoints"] = str(tmp_path / "ckpt")
    (moved / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert train_cli("--name", "run", "--resume", "--max-steps", 3, "--no-export") == 0
    assert "--checkpoints" not in capsys.readouterr().err
    assert torch.load(moved / "state.pt", weights_only=True)["step"] == 3
    assert list((tmp_path / "ckpt" / "run").iterdir()) == []
    assert json.loads((moved / "config.json").read_text())["checkpoints"] == "checkpoints"


def test_a_config_json_edited_to_settings_state_pt_cannot_serve_names_config_json(pix2pix_run, tmp_path, capsys):
    # The refusal said 'cannot resume RUN with --ngf 16 ... resume without changing them' to a user who
    # had given no flag: the value came from a hand-edited config.json.
    run = copy_run(pix2pix_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    config["ngf"] = 16
    (run / "config.json").write_text(json.dumps(config))
    before = files(run)
    capsys.readouterr()
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3) == 2
    error = one_line_error(capsys)
    assert "its config.json says ngf 16, but its state.pt was saved with ngf 8" in error and "--ngf" not in error
    assert files(run) == before
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3, "--ngf", 16) == 2
    assert "with --ngf 16" in one_line_error(capsys)  # a flag given now is named as the flag
    (run / "config.json").unlink()  # as the message says: state.pt's own settings then
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3, "--no-export") == 0


def test_a_resume_removes_the_temporary_files_of_a_process_killed_mid_write(pix2pix_run, tmp_path):
    # A SIGKILL (or a power cut) inside a checkpoint's write leaves .state.pt.XXXXXXXX.tmp, as large as the
    # checkpoint; every such kill left one more, never read and never removed.
    run = copy_run(pix2pix_run, tmp_path)
    leftovers = [run / ".state.pt.k3_9xq0a.tmp", run / ".config.json.abcdefgh.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a file")
    (run / ".notes.tmp").write_text("the user's")  # not a name the atomic writer makes
    assert train_cli("--checkpoints", run.parent, "--name", "run", "--resume", "--max-steps", 3, "--no-export") == 0
    assert not any(path.exists() for path in leftovers)
    assert (run / ".notes.tmp").read_text() == "the user's"


def test_label_names_recorded_with_spaces_around_them_still_match_their_stripped_names(tmp_path):
    # Label names are stripped since 2026-11-23: a run trained before on "dusk " was refused on resume
    # and export ("put the metadata back"), although the metadata had not changed.
    from types import SimpleNamespace

    from translate.models.base import check_same_conditions

    now = {"kind": "label", "label_names": ["dawn", "dusk"], "vocabulary": [], "encoder": {"num_labels": 2, "dim": 8}}
    model = SimpleNamespace(condition_record=lambda: now)
    check_same_conditions(model, {**now, "label_names": ["dawn", "dusk "]}, tmp_path)
    for recorded in ({**now, "label_names": ["dusk", "dawn"]}, {**now, "label_names": ["dawn", "night"]},
                     {**now, "label_names": ["dawn ", "dusk", "x"]},
                     {**now, "label_names": ["dawn", "dusk "], "encoder": {"num_labels": 2, "dim": 16}}):
        with pytest.raises(UsageError, match="other conditions"):
            check_same_conditions(model, recorded, tmp_path)


@pytest.mark.parametrize("when", ["checkpoint", "export"])
def test_a_disk_that_fills_after_the_first_checkpoint_says_to_continue_with_resume(edges, tmp_path, monkeypatch, capsys,
                                                                                  when):
    # It said "free some disk space and run the command again", and the same command then refused the
    # run folder ("already holds a run; add --resume").
    import errno

    from translate.io import generator_file
    from translate.train import loop

    saves, save = [], loop.atomic_torch_save

    def full_after_the_first(obj, path):
        saves.append(path)
        if len(saves) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        save(obj, path)

    def full_export(path, generator):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    if when == "checkpoint":
        monkeypatch.setattr(loop, "atomic_torch_save", full_after_the_first)
    else:
        monkeypatch.setattr(generator_file, "save_generator", full_export)
    ckpt = tmp_path / "ckpt"
    assert train_cli("--data", edges, "--checkpoints", ckpt, "--name", "run", "--max-steps", 3, "--checkpoint-every", 1,
                     *SMALL) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # (after the run's own lines)
    assert err.startswith("translate-train: error: cannot write ")
    assert "No space left on device; free some disk space and continue with: translate-train pix2pix --name run" in err
    assert err.endswith("--resume")
    monkeypatch.undo()
    assert train_cli("--checkpoints", ckpt, "--name", "run", "--resume", "--max-steps", 3) == 0
    assert (ckpt / "run" / "G.safetensors").is_file()
