"""%creative: the table of warm models, eviction, moving models between devices."""

import pytest
import torch

from helpers import assert_one_line_error


def test_models_before_anything_is_loaded(run):
    ran = run("%creative models")
    assert ran.ok and "No models are loaded yet" in ran.out


def test_models_table_after_two_story_calls(run):
    assert run("%%story -m gpt2 --max-new-tokens 3 --seed 1\nHello").ok
    assert run("%%story -m gpt2 --max-new-tokens 3 --seed 2\nHello").ok
    ran = run("%creative models")
    header, row = ran.out.strip().splitlines()
    assert header.split() == ["name", "task", "device", "dtype", "size", "MB", "loads", "hits", "last", "used"]
    cells = row.split()
    assert cells[:4] == ["gpt2", "story", "cpu", "float32"]
    assert float(cells[4]) > 0
    assert cells[5:7] == ["1", "1"]  # loaded once, the second call was a hit


def test_evict_by_name_then_all(run):
    run("%%story -m gpt2 --max-new-tokens 2\nHi")
    run("%%story -m smollm2 --max-new-tokens 2\nHi")
    ran = run("%creative evict gpt2")
    assert ran.ok and "Evicted gpt2." in ran.out
    assert "gpt2 " not in run("%creative models").out
    assert "Evicted smollm2." in run("%creative evict all").out
    assert "No models are loaded yet" in run("%creative models").out


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("%creative evict nothing-here", "no warm model named 'nothing-here'"),
        ("%creative evict", "usage: %creative evict NAME|all"),
        ("%creative dance", "unknown command 'dance'"),
        ("%creative device tpu", "device must be auto, cpu, cuda, cuda:N or mps"),
        ("%creative aliases movies", "unknown task 'movies'"),
        ('%creative evict "unclosed', "check the quotes"),
    ],
)
def test_bad_commands_are_one_line(run, line, fragment):
    assert_one_line_error(run(line), fragment)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_device_cuda_without_a_gpu_is_one_line_and_changes_nothing(ip, run):
    run("%%story -m gpt2 --max-new-tokens 2\nHi")
    ran = run("%creative device cuda")
    assert_one_line_error(ran, "PyTorch sees no CUDA GPU here")
    assert "cpu" in run("%creative models").out
    assert run("%%story -m gpt2 --max-new-tokens 2\nHi").ok


def test_device_cpu_moves_the_warm_models(ip, run):
    run("%%story -m gpt2 --max-new-tokens 2\nHi")
    ran = run("%creative device cpu")
    assert ran.ok and "Models now run on cpu." in ran.out
    assert ip.magics_manager.registry["CreativeMagics"].device == "cpu"
    assert "Models now run on" in run("%creative device auto").out


def test_aliases_lists_each_task_with_what_it_means_now(run):
    out = run("%creative aliases story").out
    assert "story (default smollm2):" in out
    assert "gpt2" in out and "tiny-gpt2" in out  # the tiny profile is on in the tests


def test_help(run):
    out = run("%creative").out
    assert "%creative models" in out and "%creative evict NAME|all" in out


def test_aliases_align_with_the_longest_name(run):
    out = run("%creative aliases").out
    rows = [line for line in out.splitlines() if line.startswith("  ")]
    assert any(line.split()[0] == "musicgen-melody-large" for line in rows)
    starts = {line.index(line.split()[1], len(line.split()[0]) + 2) for line in rows}
    assert len(starts) == 1, out  # every target starts in the same column


def test_fine_tuned_models_are_listed_under_story(run, monkeypatch):
    from creative_magics import finetuned

    monkeypatch.setattr(finetuned, "registered", lambda: {"keeper": {"method": "lora", "base": "gpt2"}})
    out = run("%creative aliases").out
    heading_of = {}
    heading = None
    for line in out.splitlines():
        if not line.startswith("  "):
            heading = line
        else:
            heading_of[line.split()[0]] = heading
    assert heading_of["keeper"].startswith("story (default")
