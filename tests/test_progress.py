"""Progress output: live bars on a terminal, whole lines (no carriage returns) in a log file."""

from __future__ import annotations

from mimae import progress as progress_module
from mimae.progress import progress
from tests.conftest import train_tiny


def test_off_a_terminal_progress_is_whole_lines_at_each_postfix_and_at_the_end(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "on_terminal", lambda: False)
    bar = progress(total=10, desc="work")
    for step in range(1, 11):
        bar.update()
        if step % 5 == 0:
            bar.set_postfix(loss=f"{1 / step:.2f}")
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" [")[0] for line in lines] == ["work: 5/10", "work: 10/10"]  # none repeated at close
    assert lines[1].endswith("loss=0.10")


def test_a_silent_or_transient_bar_writes_nothing_off_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "on_terminal", lambda: False)
    assert list(progress(range(3), desc=None)) == [0, 1, 2]
    assert list(progress(range(3), desc="features", leave=False)) == [0, 1, 2]
    assert list(progress(range(3), desc="x", enabled=False)) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_a_logged_training_run_writes_one_line_per_log_interval(tmp_path, capsys):
    train_tiny(tmp_path, train__log_every=2, data__train_limit=64, optim__batch_size=8)  # 8 steps
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("pretrain mae: ")]
    assert [line.split(" [")[0] for line in lines] == [f"pretrain mae: {s}/8" for s in (2, 4, 6, 8)]
    assert all("loss=" in line for line in lines)
