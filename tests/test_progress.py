"""Progress output: bars only where someone watches (a terminal or Jupyter); elsewhere (a log file, CI)
one line per finished stage, rate-limited, never a carriage return."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from scalegmn_lite.common import progress as P


@pytest.fixture(autouse=True)
def _fresh_rate_limit(monkeypatch):
    monkeypatch.setattr(P.StageLine, "_last_line", -float("inf"))
    monkeypatch.setattr(P.StageLine, "_held", 0)


def test_unwatched_bar_is_one_line_per_stage_with_postfix(monkeypatch):
    monkeypatch.setenv("SCALEGMN_LITE_PROGRESS", "lines")
    bar = P.progress_bar(range(7), desc="fit")
    assert isinstance(bar, P.StageLine)
    buf = io.StringIO()
    bar.stream = buf
    seen = []
    for i in bar:
        seen.append(i)
        P.set_postfix(bar, loss=f"0.1{i}")
    assert seen == list(range(7))  # iterates like the range
    bar.close()  # a second close writes nothing more
    out = buf.getvalue()
    assert out.count("\n") == 1 and "\r" not in out
    assert out.startswith("fit: 7 steps in ") and "(loss=0.16)" in out


def test_stage_lines_are_rate_limited_and_count_what_they_held(monkeypatch):
    buf = io.StringIO()
    lines = [P.StageLine(range(2), f"s{i}", interval=3600.0, stream=buf) for i in range(4)]
    for s in lines[:3]:
        list(s)
    assert buf.getvalue().count("\n") == 1  # the 2nd and 3rd ended within the interval
    monkeypatch.setattr(P.StageLine, "_last_line", -float("inf"))
    list(lines[3])
    assert "[+2 more stages since the last line]" in buf.getvalue().splitlines()[-1]


def test_a_stage_left_early_says_so():
    buf = io.StringIO()
    s = P.StageLine(range(10), "fit", interval=0.0, stream=buf)
    for i in s:
        if i == 3:
            break
    s.close()
    assert "stopped after 4 of 10 steps" in buf.getvalue()


def test_forced_bars_and_disabled_bars(monkeypatch):
    monkeypatch.setenv("SCALEGMN_LITE_PROGRESS", "bars")
    assert P.watched() and not isinstance(P.progress_bar(range(2)), P.StageLine)
    monkeypatch.setenv("SCALEGMN_LITE_PROGRESS", "0")
    assert not isinstance(P.progress_bar(range(2)), P.StageLine)  # off: a disabled tqdm, prints nothing


def test_a_log_file_gets_no_carriage_returns(tmp_path):
    """The issue's case: stderr redirected to a file, no terminal."""
    code = ("from scalegmn_lite.common.progress import progress_bar, set_postfix\n"
            "for k in range(3):\n"
            "    bar = progress_bar(range(50), desc=f'stage {k}')\n"
            "    for i in bar: pass\n")
    log = tmp_path / "log"
    with open(log, "w") as f:
        subprocess.run([sys.executable, "-c", code], stdout=f, stderr=subprocess.STDOUT, check=True,
                       env={"PATH": "/usr/bin:/bin", "SCALEGMN_LITE_PROGRESS_INTERVAL": "0"})
    text = log.read_text()
    assert "\r" not in text and text.count("\n") == 3 and "stage 2: 50 steps in" in text


def test_cli_logs_to_a_file_hold_one_line_per_stage(tmp_path):
    """Issue 25's acceptance check, end to end: `scalegmn-lite reproduce ... > log` and a zoo build (which
    trains, so it would draw bars on a terminal) write plain lines to a file, no carriage returns."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "SCALEGMN_LITE_PROGRESS_INTERVAL": "0", "SCALEGMN_LITE_CACHE": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "scalegmn_lite.cli"]
    runs = {"reproduce": cli + ["reproduce", "--quick", "--only", "distributed", "--out", str(tmp_path / "rep")],
            "zoo": cli + ["zoo", "--recipe", "mlp-mnist1d", "--shard", "0/128", "--out", str(tmp_path / "zoo")]}
    for name, cmd in runs.items():
        log = tmp_path / f"{name}.log"
        with open(log, "w") as f:
            subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=True, env=env, timeout=600)
        text = log.read_text()
        assert "\r" not in text and max(map(len, text.splitlines())) < 400, f"{name}: {text[:500]}"
    assert "[reproduce] distributed done" in (tmp_path / "reproduce.log").read_text()
    assert " steps in " in (tmp_path / "zoo.log").read_text()  # the training stage's one line
