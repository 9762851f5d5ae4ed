"""Training throughput of `%%finetune` (LoRA) against a plain peft + Trainer run on the same blocks,
interleaved in one process on the same warm model. Issue 7/8 asks for training tokens/s and the
overhead ratio, on the CPU here and on a GPU whenever one is available.

Two ratios: the training loop alone (our Trainer set-up, per-step callback and live view against a bare
Trainer), and the whole call (adds the held-out perplexity before and after, the checks and the save).
The magic runs as in a notebook: the live progress line and loss curve are drawn (into a discarded output).
Usage: python bench_finetune.py [--tiny] [--runs N] [--quick]  (default: a GPT-2 small-shaped model with random
weights; --quick: the tiny GPT-2, one run, to check the plumbing)
"""

import contextlib
import io
import os
import sys
import tempfile
import time
from importlib import resources

import torch

from common import emit_result, gpt2_small_folder, report

STEPS = 8
BLOCK = 64
BATCH = 4
LR = 5e-4


def main(runs=3):
    from IPython.testing.globalipapp import start_ipython
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments, default_data_collator

    from creative_magics import corpus, session, views
    from creative_magics.tasks import finetune as task

    views.rich_frontend = lambda: True  # draw the live bar and loss curve, as in a notebook

    os.environ["CREATIVE_MAGICS_HOME"] = tempfile.mkdtemp(prefix="bench_finetune_")  # a private models folder
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))
    folder = gpt2_small_folder() if "--tiny" not in sys.argv and "--quick" not in sys.argv else None
    model_ref = folder or "gpt2"
    text = resources.files("creative_magics").joinpath("data/tiny_corpus.txt").read_text(encoding="utf-8")
    ip = start_ipython()
    ip.run_line_magic("load_ext", "creative_magics")
    ip.user_ns["corpus_text"] = text
    line = f"bench --base {model_ref} --data corpus_text --max-steps {STEPS} --block-size {BLOCK} --batch-size {BATCH} --lr {LR} --seed 0 --overwrite"
    results = []

    def magic():
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ip.run_line_magic("finetune", line)
        results.append(session.current().last("finetune"))

    text_model = session.current().cache.get("story", model_ref)
    model = text_model.model
    blocks = corpus.make_blocks(text_model.tokenizer, [text], BLOCK, 0.1, seed=0)
    targets = task.target_modules(model)
    plain_times = []

    def plain():
        """What a person would write by hand: wrap with peft, train with Trainer, save, unwrap."""
        start = time.perf_counter()
        torch.manual_seed(0)
        peft_model = get_peft_model(
            model,
            LoraConfig(r=8, lora_alpha=16, lora_dropout=task.LORA_DROPOUT, target_modules=targets, fan_in_fan_out=task._uses_conv1d(model, targets), task_type="CAUSAL_LM"),
        )
        with tempfile.TemporaryDirectory() as out:
            args = TrainingArguments(
                output_dir=out, max_steps=STEPS, learning_rate=LR, per_device_train_batch_size=BATCH, weight_decay=0.0,
                save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=model.device.type == "cpu", seed=0,
                bf16=model.device.type == "cuda" and torch.cuda.is_bf16_supported(),
            )
            trainer = Trainer(model=peft_model, args=args, train_dataset=task._Blocks(blocks.train), data_collator=default_data_collator)
            train_start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                trainer.train()
            train_s = time.perf_counter() - train_start
            peft_model.save_pretrained(os.path.join(out, "adapter"))
        peft_model.unload()
        model.eval()
        plain_times.append((train_s, time.perf_counter() - start))

    magic()  # warm-up: imports, first allocations
    plain()
    results.clear()
    plain_times.clear()
    magic_wall = []
    for _ in range(runs):
        start = time.perf_counter()
        magic()
        magic_wall.append(time.perf_counter() - start)
        plain()
    trained_tokens = results[0].trained_tokens
    assert all(r.trained_tokens == trained_tokens and r.steps == STEPS for r in results)
    median = lambda xs: sorted(xs)[len(xs) // 2]
    magic_train = median([r.elapsed_s for r in results])
    magic_total = median(magic_wall)
    plain_train = median([t for t, _ in plain_times])
    plain_total = median([t for _, t in plain_times])
    device = str(model.device)
    shape = "GPT-2 small shape (124M)" if folder else "tiny GPT-2"
    report(
        f"%%finetune (LoRA r=8) vs plain peft + Trainer, {shape} on {device}, {STEPS} steps x {BATCH} x {BLOCK} tokens, median of {runs}",
        [
            ("plain: training loop", f"{trained_tokens / plain_train:,.0f} tokens/s ({plain_train:.2f} s)"),
            ("%%finetune: training loop", f"{trained_tokens / magic_train:,.0f} tokens/s ({magic_train:.2f} s)"),
            ("loop overhead", f"{(magic_train / plain_train - 1) * 100:+.1f} %"),
            ("plain: whole run", f"{trained_tokens / plain_total:,.0f} tokens/s ({plain_total:.2f} s; wrap, train, save)"),
            ("%%finetune: whole call", f"{trained_tokens / magic_total:,.0f} tokens/s ({magic_total:.2f} s; + perplexity before/after, checks)"),
            ("whole-call ratio", f"{magic_total / plain_total:.2f}x the plain run's time"),
        ],
    )
    emit_result(
        "`%%finetune` (LoRA) / plain peft + Trainer, training tokens/s",
        f"loop overhead {(magic_train / plain_train - 1) * 100:+.1f}% ({trained_tokens / magic_train:,.0f} vs {trained_tokens / plain_train:,.0f} tokens/s, {shape})",
        magic_train / plain_train,
        whole_call_ratio=magic_total / plain_total,
    )
    return magic_train / plain_train


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    main(runs=1 if quick else int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3)
