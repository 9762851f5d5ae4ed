"""%%finetune and creative_magics.finetune on the tiny GPT-2: the held-out loss goes down, %%story uses
the adapted model at once and after a restart, the cached base model is left exactly as it was,
Ctrl-C keeps a usable checkpoint, and every bad input is one line."""

import json
import os
import signal

import pytest
import torch

import creative_magics
from creative_magics import corpus, finetuned, paths, session
from creative_magics.errors import CreativeError
from creative_magics.tasks import finetune as task
from helpers import assert_one_line_error

CORPUS = (
    "The lighthouse keeper counts the waves at night. She writes each one in a blue book, "
    "and the book remembers the sea. In the morning the gulls read it aloud.\n"
) * 12
# Enough steps, rank and learning rate that the tiny model's held-out loss drops far beyond noise.
TRAIN = "--base gpt2 --max-steps 40 --lr 1e-2 --block-size 32 --lora-r 8 --lora-alpha 16 --seed 0"
QUICK = "--base gpt2 --max-steps 2 --block-size 16 --seed 0"


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A private models folder; the tiny models are shared with the rest of the run (no rebuild)."""
    shared_tiny = paths.home() / "tiny"
    shared_tiny.mkdir(parents=True, exist_ok=True)
    (tmp_path / "tiny").symlink_to(shared_tiny, target_is_directory=True)
    monkeypatch.setenv("CREATIVE_MAGICS_HOME", str(tmp_path))
    return tmp_path


def last_finetune():
    return session.current().last("finetune")


def cached(name):
    return session.current().cache.get("story", name)


def base_state(model):
    return {
        "weights": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "modules": [(n, type(m).__name__) for n, m in model.named_modules()],
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "training": model.training,
        "config": model.config.to_dict(),
        "generation_config": model.generation_config.to_dict(),
        "attributes": sorted(vars(model)),
    }


def assert_same_state(before, after):
    assert before["weights"].keys() == after["weights"].keys()
    for key, value in before["weights"].items():
        assert torch.equal(value, after["weights"][key]), key
    for part in ("modules", "requires_grad", "training", "config", "generation_config", "attributes"):
        assert before[part] == after[part], part


def test_training_lowers_the_held_out_loss_and_story_uses_the_adapted_model(ip, run, home):
    before = run("%%story -m gpt2 --seed 3 --max-new-tokens 20 -o base_text\nThe lighthouse")
    ran = run(f"%%finetune keeper {TRAIN}\n{CORPUS}")
    assert ran.ok, ran.err
    result = last_finetune()
    assert result.steps == 40 and len(result.losses) == 40 and not result.interrupted
    assert result.loss_after < result.loss_before - 0.15
    assert result.perplexity_after < 0.9 * result.perplexity_before
    assert "Held-out perplexity" in ran.out and "%%story -m keeper" in ran.out
    assert os.path.isfile(os.path.join(result.path, "adapter_config.json"))
    assert result.path == str(home / "models" / "keeper")
    after = run("%%story -m keeper --seed 3 --max-new-tokens 20 -o adapted_text\nThe lighthouse")
    assert before.ok and after.ok
    assert ip.user_ns["adapted_text"].text != ip.user_ns["base_text"].text
    assert ip.user_ns["adapted_text"].recipe["model"] == "keeper"


def test_the_loaded_model_is_the_trained_one(ip, home):
    result = creative_magics.finetune("keeper", CORPUS, base="gpt2", max_steps=20, lr=1e-2, block_size=32, seed=0)
    text_model = cached("keeper")
    blocks = corpus.make_blocks(text_model.tokenizer, [CORPUS], 32, 0.1, seed=0)
    reloaded = task.held_out_loss(text_model.model, blocks.held_out, 4)
    assert reloaded == pytest.approx(result.loss_after, rel=1e-4)
    assert result.recipe["params"]["target_modules"] == ["c_attn", "c_proj"]


def test_the_cached_base_model_is_unchanged_and_was_not_copied(ip, home):
    story = dict(model="gpt2", seed=5, max_new_tokens=15)
    text_before = creative_magics.story("The sea", **story).text
    model = cached("gpt2").model
    before = base_state(model)
    trained_in_place = []

    def check_in_place(partial):
        trained_in_place.append(any("lora_A" in name for name, _ in cached("gpt2").model.named_modules()))

    creative_magics.finetune("keeper", CORPUS, base="gpt2", max_steps=5, lr=1e-2, block_size=32, seed=0, on_progress=check_in_place)
    assert trained_in_place and all(trained_in_place)  # LoRA layers sat in the cached model itself
    assert cached("gpt2").model is model
    assert_same_state(before, base_state(model))
    assert creative_magics.story("The sea", **story).text == text_before
    (row,) = [r for r in session.current().cache.table() if r["name"] == "gpt2"]
    assert row["loads"] == 1


def test_the_name_survives_a_kernel_restart(ip, run, home):
    assert run(f"%%finetune keeper {TRAIN}\n{CORPUS}").ok
    assert run("%%story -m keeper --seed 4 --max-new-tokens 12 -o first\nThe gulls").ok
    magics = ip.magics_manager.registry["CreativeMagics"]
    session.reset()  # what a restart leaves: a new session with an empty cache; the folder stays
    session.current().attach(magics)
    assert run("%%story -m keeper --seed 4 --max-new-tokens 12 -o again\nThe gulls").ok
    assert ip.user_ns["again"].text == ip.user_ns["first"].text
    table = run("%creative models").out
    assert table.splitlines()[0].split()[-1] == "base"
    (row,) = [line for line in table.splitlines() if line.startswith("keeper")]
    assert row.endswith("LoRA on gpt2")
    assert "gpt2" not in [line.split()[0] for line in table.splitlines()[1:]]  # loaded from disk, not a cached copy
    aliases = run("%creative aliases story").out
    assert "keeper" in aliases and "LoRA on gpt2" in aliases and "(fine-tuned)" in aliases


def test_a_taken_name_needs_overwrite_and_then_the_stale_copy_goes(ip, run, home):
    assert run(f"%%finetune keeper {QUICK}\n{CORPUS}").ok
    assert run("%%story -m keeper --seed 1 --max-new-tokens 10 -o old\nThe sea").ok
    ran = run(f"%%finetune keeper {QUICK}\n{CORPUS}")
    assert_one_line_error(ran, "'keeper' is already a fine-tuned model (LoRA on gpt2)", "--overwrite")
    assert run(f"%%finetune keeper {TRAIN} --overwrite\n{CORPUS}").ok
    assert run("%%story -m keeper --seed 1 --max-new-tokens 10 -o new\nThe sea").ok
    assert ip.user_ns["new"].text != ip.user_ns["old"].text  # the retrained model, not the warm old one
    assert [p.name for p in (home / "models").iterdir()] == ["keeper"]  # no leftovers


def test_overwrite_may_take_a_builtin_alias(ip, run, home):
    ran = run(f"%%finetune gpt2 {QUICK}\n{CORPUS}")
    assert_one_line_error(ran, "'gpt2' is already a built-in model alias")
    ran = run(f"%%finetune gpt2 {QUICK} --overwrite\n{CORPUS}")
    assert ran.ok, ran.err
    assert session.current().resolve("story", "gpt2").kind == "adapter"
    assert run("%%story -m gpt2 --max-new-tokens 5\nHi").ok
    ran = run(f"%%finetune gpt2 {QUICK} --overwrite\n{CORPUS}")
    assert_one_line_error(ran, "'gpt2' cannot be fine-tuned into itself")


def test_full_fine_tune_trains_a_copy(ip, run, home):
    model = cached("gpt2").model
    before = base_state(model)
    ran = run(f"%%finetune whole --full {TRAIN.replace('--lr 1e-2', '--lr 3e-3')}\n{CORPUS}")
    assert ran.ok, ran.err
    result = last_finetune()
    assert result.method == "full" and "a full fine-tune" in ran.out
    assert result.loss_after < result.loss_before - 0.15
    assert os.path.isfile(os.path.join(result.path, "config.json")) and not os.path.exists(os.path.join(result.path, "adapter_config.json"))
    assert session.current().resolve("story", "whole").kind == "local"
    assert run("%%story -m whole --max-new-tokens 5\nThe sea").ok
    assert_same_state(before, base_state(model))
    assert "lora_r" not in result.recipe["params"]


def test_ctrl_c_keeps_the_last_finished_step_and_the_model_is_usable(ip, run, home):
    model = cached("gpt2").model
    before = base_state(model)

    def interrupt_at_step_5(partial):
        if partial.steps == 5:
            raise KeyboardInterrupt

    result = creative_magics.finetune("keeper", CORPUS, base="gpt2", max_steps=40, lr=1e-2, block_size=32, seed=0, on_progress=interrupt_at_step_5)
    assert result.interrupted and result.recipe["interrupted"] is True
    assert result.steps == 5 and len(result.losses) == 5 and result.max_steps == 40
    assert_same_state(before, base_state(model))
    saved = json.loads((home / "models" / "keeper" / finetuned.METADATA).read_text())
    assert saved["interrupted"] is True and saved["recipe"]["params"]["steps"] == 5
    text_model = cached("keeper")
    blocks = corpus.make_blocks(text_model.tokenizer, [CORPUS], 32, 0.1, seed=0)
    assert task.held_out_loss(text_model.model, blocks.held_out, 4) == pytest.approx(result.loss_after, rel=1e-4)
    assert run("%%story -m keeper --max-new-tokens 5\nThe sea").ok
    assert not session.current().cache.table()[0]["in_use"]


def test_a_real_ctrl_c_stops_at_the_end_of_the_step(ip, run, home, monkeypatch):
    """SIGINT (what Jupyter's interrupt sends) ends training after the step under way; the cell ends normally."""
    from creative_magics import views

    def interrupt_at_step_3(self, partial):
        if partial.steps == 3:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(views.FinetuneView, "update", interrupt_at_step_3)
    handler = signal.getsignal(signal.SIGINT)
    ran = run(f"%%finetune keeper {TRAIN}\n{CORPUS}")
    assert ran.ok, ran.err
    result = last_finetune()
    assert result.interrupted and result.steps == 4  # step 4 was under way when the signal came
    assert "Stopped at step 4 of 40; what was learned so far is saved." in ran.out
    assert signal.getsignal(signal.SIGINT) is handler
    assert run("%%story -m keeper --max-new-tokens 5\nThe sea").ok


def test_a_failed_save_keeps_the_previous_model(home):
    def write_one(folder):
        (folder / "weights").write_text("one")
        finetuned.write_metadata(folder, {"method": "lora", "base": "gpt2"})

    def write_and_fail(folder):
        (folder / "weights").write_text("two")
        raise KeyboardInterrupt

    finetuned.save("keeper", write_one)
    with pytest.raises(KeyboardInterrupt):
        finetuned.save("keeper", write_and_fail)
    assert (home / "models" / "keeper" / "weights").read_text() == "one"
    assert [p.name for p in (home / "models").iterdir()] == ["keeper"]
    assert finetuned.registered() == {"keeper": {"method": "lora", "base": "gpt2"}}


def test_data_from_a_variable_a_folder_and_a_jsonl(ip, run, home):
    ip.user_ns["poems"] = [CORPUS, "A second, shorter poem about the tide.\n" * 5]
    assert run(f"%finetune from-var --data poems {QUICK}").ok  # the line form: a %%magic needs a body
    assert last_finetune().recipe["data"].startswith("2 texts")
    folder = home / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text(CORPUS, encoding="utf-8")
    assert run(f"%finetune from-folder --data {folder} {QUICK}").ok
    jsonl = home / "poems.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": line}) for line in CORPUS.splitlines()), encoding="utf-8")
    assert run(f"%finetune from-jsonl --data {jsonl} {QUICK}").ok
    assert last_finetune().recipe["data"] == str(jsonl)


def test_python_api_defaults_and_recipe(ip, home):
    magics = ip.magics_manager.registry["CreativeMagics"]
    magics.story_defaults = {"model": "gpt2"}
    magics.finetune_defaults = {"max_steps": 3, "block_size": 16}
    result = creative_magics.finetune("mine", [CORPUS], seed=2)
    assert result.base == "gpt2"  # without a base: the story model
    recipe = result.recipe
    assert (recipe["task"], recipe["name"], recipe["model"], recipe["seed"]) == ("finetune", "mine", "gpt2", 2)
    p, s = recipe["params"], recipe["sources"]
    assert (p["max_steps"], s["max_steps"]) == (3, "config")
    assert (p["block_size"], s["block_size"]) == (16, "config")
    assert (p["lr"], s["lr"]) == (task.DEFAULT_LR["lora"], "default")
    assert p["steps"] == 3 and p["method"] == "lora"
    assert repr(result).startswith("<FinetuneResult 'mine' from gpt2 lora 3 steps perplexity")
    with pytest.raises(CreativeError, match="unknown parameter"):
        creative_magics.finetune("mine", CORPUS, epoch=2)
    unmeasured = creative_magics.finetune("no-split", CORPUS, base="gpt2", max_steps=2, block_size=16, eval_split=0, seed=0)
    assert unmeasured.held_out_blocks == 0 and unmeasured.perplexity_before is None and unmeasured.perplexity_after is None
    assert "perplexity" not in str(unmeasured) and unmeasured.path


def test_without_peft_lora_is_one_line(ip, run, home, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else find_spec(name, *a))
    assert_one_line_error(run(f"%%finetune keeper {QUICK}\n{CORPUS}"), "LoRA needs the peft library")
    assert run(f"%%finetune keeper {QUICK} --full\n{CORPUS}").ok  # a full fine-tune does without it


@pytest.mark.parametrize(
    "line, body, fragment",
    [
        ("keeper2 --base gpt2", "   \n ", "the training text is empty"),
        ("keeper2 --base gpt2 --data {home}/no/such.txt", None, "no file or folder"),
        ("keeper2 --base gpt2 --data {home}/fields.jsonl", None, "line 1 has no 'text' field"),
        ("keeper2 --base gpt2 --data {home}/empty", None, "holds no .txt files"),
        ("keeper2 --base gpt2 --data number", None, "data must be a text, a list of texts"),
        ("keeper2 --base gpt2", None, "no texts to learn from"),
        ("keeper2 --base gpt2 --data number", "", "the cell body is empty. Did you mean the line magic %finetune"),
        ("keeper2 --base gpt2 --data {home}/fields.jsonl", CORPUS, "in the cell body or with --data, not both"),
        ("gpt2 --base gpt2", CORPUS, "'gpt2' is already a built-in model alias"),
        ("smollm2", CORPUS, "'smollm2' is already a built-in model alias"),
        ("keeper2 --base gpt2 --block-size 100000", CORPUS, "block-size 100000 is beyond the model's context of 256 tokens"),
        ("keeper2 --base gpt2", "A short line.", "too few for 2 blocks"),
        ("'bad/name' --base gpt2", CORPUS, "cannot name a model"),
        ("keeper2 --base sd-turbo", CORPUS, "'sd-turbo' is not a finetune model"),
        ("keeper2 --base gpt2 --eval-split 0.9", CORPUS, "eval-split must be in [0, 0.5]"),
        ("keeper2 --base gpt2 --lr 0", CORPUS, "lr must be in (0, 1)"),
        ("keeper2 --base gpt2 --lr nan", CORPUS, "lr must be a number, not nan"),
        ("keeper2 --base gpt2 --epochs 0", CORPUS, "epochs must be > 0"),
        ("keeper2 --base gpt2 --lora-r 0", CORPUS, "lora-r must be a whole number >= 1"),
        ("keeper2 --base gpt2 --seed -1", CORPUS, "seed must be a whole number"),
        ("--base gpt2", CORPUS, "the following arguments are required: name"),
        ("keeper2 --base gpt2 --lora-rank 4", CORPUS, "unrecognized arguments: --lora-rank"),
    ],
)
def test_bad_input_is_one_line_and_the_next_call_works(ip, run, home, line, body, fragment):
    (home / "fields.jsonl").write_text('{"body": "no text field"}\n', encoding="utf-8")
    (home / "empty").mkdir()
    ip.user_ns["number"] = 42
    magic = f"%finetune {line}" if body is None else f"%%finetune {line}\n{body}"
    ran = run(magic.format(home=home))
    assert_one_line_error(ran, fragment)
    assert not (home / "models" / "keeper2").exists()
    assert run(f"%%finetune fine {QUICK} --overwrite\n{CORPUS}").ok
    assert run("%%story -m fine --max-new-tokens 3\nStill fine").ok


def test_lora_targets_per_architecture():
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=8, n_layer=1, n_head=2, vocab_size=10, n_positions=8))
    assert task.target_modules(gpt2) == ["c_attn", "c_proj"] and task._uses_conv1d(gpt2, ["c_attn", "c_proj"])
    llama = LlamaForCausalLM(
        LlamaConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, vocab_size=10)
    )
    assert task.target_modules(llama) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert not task._uses_conv1d(llama, task.target_modules(llama))

    class Unknown:
        class config:
            model_type = "something-new"

    assert task.target_modules(Unknown()) == "all-linear"


def test_the_notebook_view_ends_with_only_the_summary_and_the_curve(ip, home, monkeypatch):
    """Live displays are emptied at the end and the final outputs are new displays: what nbval compares
    (it ignores display updates) never depends on timing."""
    import IPython.display

    from creative_magics import views

    shown, updates = [], []

    class Handle:
        def __init__(self, index):
            self.index = index

        def update(self, bundle, raw=False):
            updates.append((self.index, bundle))

    def display(bundle, raw=False, display_id=False):
        shown.append(bundle)
        return Handle(len(shown) - 1) if display_id else None

    monkeypatch.setattr(views, "rich_frontend", lambda: True)
    monkeypatch.setattr(views, "FINETUNE_BAR_INTERVAL_S", 0.0)
    monkeypatch.setattr(IPython.display, "display", display)
    view = views.FinetuneView()
    result = creative_magics.finetune("keeper", CORPUS, base="gpt2", max_steps=6, lr=1e-2, block_size=32, seed=0, on_progress=view.update)
    view.finish(result)
    assert shown[0] == {"text/plain": "", "text/html": ""}  # one live display (bar and curve), empty at first
    live = [bundle for index, bundle in updates if index == 0 and bundle["text/plain"]]
    assert any("6/6" in bundle["text/plain"] for bundle in live)
    for bundle in live:  # the curve keeps up with the bar: as many points as losses reported so far
        step = int(bundle["text/plain"].split("/")[0].split()[-1].split("|")[-1].strip() or 0)
        points = bundle["text/html"].split('points="')[1].split('"')[0].split() if "<polyline" in bundle["text/html"] else []
        assert len(points) == (step if step >= 2 else 0), (step, len(points))
    assert updates[-1] == (0, {"text/plain": "", "text/html": ""})  # emptied at the end
    summary, curve = shown[1:]
    assert summary["text/plain"] == str(result) and "Held-out perplexity" in summary["text/markdown"]
    assert curve["text/plain"] == "<loss curve: 6 steps>" and curve["image/png"]
