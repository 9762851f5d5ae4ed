"""The benchmark plumbing, never the timings: benchmarks/run_all.py runs benchmarks in their own
processes and tabulates the headline each prints as `RESULT {json}` (a --quick smoke run of the two
cheap ones here), and benchmarks/gpu.py stops at once, in one line, where there is no CUDA GPU."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
HEADER = "| what | figure | ratio | benchmark |"


def load_run_all():
    spec = importlib.util.spec_from_file_location("run_all", BENCHMARKS / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table_rows(stdout):
    lines = stdout.splitlines()
    start = lines.index(HEADER)
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines[start + 2 :] if line.startswith("|")]


def test_every_benchmark_has_a_quick_mode_and_a_result_line():
    run_all = load_run_all()
    assert list(run_all.BENCHMARKS) == ["load", "cache", "offline", "memory", "story", "paint", "paint-canvas", "stylize", "feedforward", "compose", "finetune", "remote", "midi", "compose-long", "batch", "show-probs"]
    for script, _ in run_all.BENCHMARKS.values():
        source = (BENCHMARKS / script).read_text(encoding="utf-8")
        assert "--quick" in source and "emit_result(" in source, script


def test_the_last_result_line_is_the_headline_and_missing_ratios_show_as_a_dash():
    run_all = load_run_all()
    out = 'report\nRESULT {"what": "old", "ratio": 1}\nmore\nRESULT {"what": "x", "figure": "1 s", "ratio": null}\n'
    assert run_all.parse_result(out) == {"what": "x", "figure": "1 s", "ratio": None}
    assert run_all.parse_result("no result here") is None
    assert run_all.table([("x", "1 s", None, "b.py")]).splitlines()[-1] == "| x | 1 s | - | `b.py` |"


def test_run_all_quick_collects_the_headline_figures(tmp_path):
    saved = tmp_path / "headlines.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--only", "load,cache", "--json", str(saved)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = table_rows(done.stdout)
    assert [row[3] for row in rows] == ["`bench_load.py`", "`bench_cache.py`"]
    assert "%load_ext creative_magics" in rows[0][0] and "second `get`" in rows[1][0]
    for what, figure, ratio, _ in rows:
        assert figure and not figure.startswith("failed")
        assert float(ratio) > 0
    headlines = json.loads(saved.read_text(encoding="utf-8"))
    assert set(headlines) == {"load", "cache"}
    assert all(isinstance(h["ratio"], float) for h in headlines.values())


def test_run_all_refuses_an_unknown_name():
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run_all.py"), "--only", "load,nonsense"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "unknown benchmark nonsense" in done.stderr


def test_gpu_benchmarks_stop_in_one_line_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here: gpu.py would run its measurements")
    done = subprocess.run([sys.executable, str(BENCHMARKS / "gpu.py")], capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0 and done.stdout == ""
    assert len(lines) == 1 and "no CUDA GPU here" in lines[0], lines


def test_gpu_benchmarks_cpu_smoke_runs_every_row_with_the_fast_paths():
    """W2 9/9: `gpu.py --cpu-smoke` runs every row on tiny models (torch.compile's eager backend) and prints the one
    table, each row plain vs ours vs our fast path; the figures say nothing (the GPU run measures them)."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / "gpu.py"), "--cpu-smoke"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| figure (CPU smoke run"))
    assert "| plain library call | ours | ours, fast path | fast path vs plain |" in lines[start]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[start + 2 :] if line.startswith("|")]
    names = [row[0] for row in rows]
    for fragment in ("SD 1.5", "SDXL", "SD-Turbo shape 64², 1 step, batch 1", "SD-Turbo shape 64², 1 step, batch 2", "GPT-2 small",
                     "SmolLM2-135M shape", "MusicGen-small shape", "Gatys VGG19 32², fp32", "Gatys VGG19 32², tf32", "Gatys VGG19 32², amp",
                     "AdaIN"):
        assert any(fragment in name for name in names), (fragment, names)
    for row in rows:
        assert float(row[2]) > 0 and float(row[3]) > 0, row  # plain and ours measured in the same run
        if not row[0].startswith("Gatys"):
            assert float(row[4]) > 0 and row[5].endswith("x"), row
    assert lines[-1].startswith("RESULT ")


def test_bench_remote_quick_measures_against_a_real_server():
    """W2 3/9's benchmark starts `transformers serve` itself, runs both contenders and stops the server."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--only", "remote"], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (row,) = table_rows(done.stdout)
    assert "%%story -m local:MODEL" in row[0] and "first token" in row[1] and float(row[2]) > 0
    assert "first token, difference" in done.stdout and "our code / the client's" in done.stdout
