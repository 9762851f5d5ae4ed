"""Adapt a causal language model to a person's own texts: LoRA with peft (default) or a full fine-tune,
trained by transformers' Trainer, measured by held-out perplexity before and after, saved by name.

LoRA trains the warm model from the cache in place (no second copy) and takes its adapter layers out
again afterwards, so the cached model is left as it was. A full fine-tune trains a copy.
Ctrl-C stops at the end of the current step (a second Ctrl-C stops at once); what was learned up to
the last finished step is saved and usable.
"""

import contextlib
import copy
import math
import signal
import tempfile
import threading
import time
import warnings
from datetime import datetime, timezone

from .. import corpus, defaults, finetuned, params, seeds
from ..hf import quiet
from ..results import FinetuneResult
from . import context_length

TASK = params.FINETUNE
# Used when neither the user nor %config give a value; without max_steps the epochs decide, and `lr`
# depends on the method.
HOUSE_DEFAULTS = TASK.house_defaults()
DEFAULT_LR = {"lora": 5e-4, "full": 5e-5}
LORA_DROPOUT = 0.05
PARAMS = TASK.names

# LoRA target modules by model_type: the attention projections (and GPT-2's output projections).
# Other architectures use peft's own table, else every linear layer but the output head.
LORA_TARGETS = {
    "gpt2": ["c_attn", "c_proj"],
    "gpt_bigcode": ["c_attn", "c_proj"],
    "gpt_neo": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "gptj": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "gpt_neox": ["query_key_value", "dense"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense"],
    "phi3": ["qkv_proj", "o_proj"],
    "falcon": ["query_key_value", "dense"],
    "bloom": ["query_key_value", "dense"],
}
for _llama_like in ("llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen2_moe", "gemma", "gemma2", "gemma3_text",
                    "olmo", "olmo2", "granite", "stablelm", "starcoder2", "cohere", "smollm3"):
    LORA_TARGETS[_llama_like] = ["q_proj", "k_proj", "v_proj", "o_proj"]
LORA_TARGETS["starcoder2"] = ["q_proj", "k_proj", "v_proj", "o_proj"]


def check(values):
    """One line for a value no run accepts (each against its declaration). Values not given (None) pass."""
    TASK.check(values)


def target_modules(model):
    """LoRA targets for this architecture: our table, peft's table, else all linear layers."""
    model_type = getattr(model.config, "model_type", "")
    if model_type in LORA_TARGETS:
        return list(LORA_TARGETS[model_type])
    try:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_TARGETS
    except ImportError:
        PEFT_TARGETS = {}
    if model_type in PEFT_TARGETS:
        return list(PEFT_TARGETS[model_type])
    return "all-linear"


def _uses_conv1d(model, targets):
    """GPT-2-style Conv1D layers store weights transposed; peft needs fan_in_fan_out=True for them."""
    if not isinstance(targets, list):
        return False
    return any(
        type(module).__name__ == "Conv1D" and name.rsplit(".", 1)[-1] in targets for name, module in model.named_modules()
    )


def held_out_loss(model, blocks, batch_size):
    """Mean next-token loss over the held-out blocks (all the same length), or None when there are none."""
    import torch

    if not blocks:
        return None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        with torch.no_grad(), quiet():
            for start in range(0, len(blocks), batch_size):
                batch = torch.tensor(blocks[start : start + batch_size], device=model.device)
                loss = model(input_ids=batch, labels=batch).loss
                total += float(loss) * len(batch)
                count += len(batch)
    finally:
        model.train(was_training)
    return total / count


def perplexity(loss):
    return None if loss is None else math.exp(min(loss, 700.0))


class _Blocks:
    """The training blocks as a torch Dataset of {input_ids, labels}."""

    def __init__(self, blocks):
        self.blocks = blocks

    def __len__(self):
        return len(self.blocks)

    def __getitem__(self, index):
        import torch

        ids = torch.tensor(self.blocks[index])
        return {"input_ids": ids, "labels": ids.clone()}


@contextlib.contextmanager
def _ctrl_c_stops_at_step_end(stop):
    """While training, the first Ctrl-C only sets `stop` (the loop ends after the current step);
    a second one interrupts at once. Only the main thread can own the SIGINT handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not allowed here (an embedded interpreter, say)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def _callback(step_done, loss_logged, stop, snapshot):
    from transformers import TrainerCallback

    class Reporter(TrainerCallback):
        """Counts finished steps, takes the step-end snapshot, honours a stop, and reports each step's loss."""

        def on_step_end(self, args, state, control, **kwargs):
            step_done(state.global_step, state.max_steps, state.epoch)
            snapshot()
            if stop.is_set():
                control.should_training_stop = True

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                loss_logged(float(logs["loss"]))

    return Reporter()


def _samples_seen(steps, train_count, batch_size):
    """Training samples in the first `steps` steps (the last batch of an epoch may be short)."""
    per_epoch = math.ceil(train_count / batch_size)
    full_epochs, rest = divmod(steps, per_epoch)
    return full_epochs * train_count + min(rest * batch_size, train_count)


def train(text_model, texts, values, sources=None, *, name, base_name, base_spec, on_progress=None):
    """Fine-tune `text_model` on `texts` (a corpus.Texts) with merged `values` (see PARAMS; None = not
    given), save the result as NAME in the models folder, and return a FinetuneResult.

    on_progress(partial FinetuneResult) is called after each step with the losses so far.
    """
    import torch

    model, tokenizer = text_model.model, text_model.tokenizer
    method = "full" if values.get("full") else "lora"
    values, sources = defaults.fill(values, sources, ("default", dict(HOUSE_DEFAULTS, lr=DEFAULT_LR[method])))
    check(values)
    seed = seeds.choose(values.get("seed"))
    context = context_length(model)
    block_size = int(values["block_size"])
    with quiet():
        blocks = corpus.make_blocks(tokenizer, texts.texts, block_size, float(values["eval_split"]), seed, context)
    batch_size = int(values["batch_size"])

    used = {
        "method": method,
        "epochs": float(values["epochs"]),
        "max_steps": int(values["max_steps"]) if values.get("max_steps") else None,
        "lr": float(values["lr"]),
        "batch_size": batch_size,
        "block_size": block_size,
        "eval_split": float(values["eval_split"]),
    }
    if method == "lora":
        targets = target_modules(model)
        alpha = values["lora_alpha"]
        used.update(
            lora_r=int(values["lora_r"]),
            lora_alpha=int(alpha) if float(alpha).is_integer() else float(alpha),
            lora_dropout=LORA_DROPOUT,
            target_modules=targets,
        )
    recipe = {
        "task": "finetune",
        "name": name,
        "model": base_name,
        "seed": seed,
        "data": texts.source,
        "params": used,
        "sources": {key: sources.get(key, "default") for key in used if key not in ("method", "lora_dropout", "target_modules")},
    }
    recipe["sources"]["method"] = sources.get("full", "default")

    state = {"losses": [], "steps": 0, "max_steps": 0, "epoch": 0.0, "started": time.monotonic()}

    def partial():
        return FinetuneResult(
            name=name,
            base=base_name,
            method=method,
            losses=list(state["losses"]),
            steps=state["steps"],
            max_steps=state["max_steps"],
            epoch=state["epoch"],
            elapsed_s=time.monotonic() - state["started"],
            recipe={},
            done=False,
        )

    def step_done(step, max_steps, epoch):
        state.update(steps=step, max_steps=max_steps, epoch=epoch or 0.0)

    def loss_logged(loss):
        state["losses"].append(loss)
        if on_progress is not None:
            on_progress(partial())

    device, was_training = model.device, model.training
    use_cache = getattr(model.config, "use_cache", None)  # the Trainer turns it off on the model it gets
    loss_before = held_out_loss(model, blocks.held_out, batch_size)
    trained = None
    interrupted = False
    requires_grad = {n: p.requires_grad for n, p in model.named_parameters()}
    try:
        torch.manual_seed(seed)
        if method == "lora":
            trained = _wrap_lora(model, used)
        else:
            trained = copy.deepcopy(model).to(dtype=torch.float32)
            for parameter in trained.parameters():
                parameter.requires_grad_(True)
        snapshot, restore = _snapshots(trained, keep=(method == "lora"))
        stop = threading.Event()
        trainer, workdir = _trainer(trained, blocks, used, seed, _callback(step_done, loss_logged, stop, snapshot))
        state["max_steps"] = trainer.args.max_steps if trainer.args.max_steps > 0 else _planned_steps(blocks, used)
        state["started"] = time.monotonic()
        try:
            with workdir, _ctrl_c_stops_at_step_end(stop), quiet(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trainer.train()
            interrupted = stop.is_set() and state["steps"] < state["max_steps"]
        except KeyboardInterrupt:
            interrupted = True
            restore()  # the weights as they were at the end of the last finished step
        train_s = time.monotonic() - state["started"]
        trained.eval()
        loss_after = None
        if state["steps"]:
            try:
                loss_after = held_out_loss(trained, blocks.held_out, batch_size)
            except KeyboardInterrupt:
                interrupted = True
        path = None
        if state["steps"]:
            recipe["params"]["steps"] = state["steps"]
            info = _metadata(name, base_name, base_spec, method, recipe, loss_before, loss_after, interrupted)
            path = finetuned.save(name, lambda folder: _write(trained, tokenizer, folder, info))
    finally:
        if method == "lora" and trained is not None:
            _unwrap_lora(trained, model)
        elif trained is not None:
            del trained
        for n, p in model.named_parameters():
            p.requires_grad_(requires_grad.get(n, p.requires_grad))
        if model.device != device:
            model.to(device)
        if use_cache is not None:
            model.config.use_cache = use_cache
        model.train(was_training)
    if interrupted:
        recipe["interrupted"] = True
    samples = _samples_seen(state["steps"], len(blocks.train), batch_size)
    return FinetuneResult(
        name=name,
        base=base_name,
        method=method,
        path=str(path) if path else None,
        losses=state["losses"],
        steps=state["steps"],
        max_steps=state["max_steps"],
        epoch=state["epoch"],
        loss_before=loss_before,
        loss_after=loss_after,
        perplexity_before=perplexity(loss_before),
        perplexity_after=perplexity(loss_after),
        tokens=blocks.tokens,
        train_blocks=len(blocks.train),
        held_out_blocks=len(blocks.held_out),
        block_size=block_size,
        trained_tokens=samples * block_size,
        elapsed_s=train_s,
        interrupted=interrupted,
        recipe=recipe,
    )


def _planned_steps(blocks, used):
    per_epoch = math.ceil(len(blocks.train) / used["batch_size"])
    return used["max_steps"] or max(1, math.ceil(per_epoch * used["epochs"]))


def _wrap_lora(model, used):
    """Put LoRA layers into `model` (in place) and return the peft model that trains only them."""
    from peft import LoraConfig, get_peft_model

    targets = used["target_modules"]
    config = LoraConfig(
        r=used["lora_r"],
        lora_alpha=used["lora_alpha"],
        lora_dropout=LORA_DROPOUT,
        target_modules=targets,
        fan_in_fan_out=_uses_conv1d(model, targets),
        bias="none",
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft's and transformers' deprecation chatter would land in notebooks
        return get_peft_model(model, config)


def _unwrap_lora(peft_model, model):
    """Take the LoRA layers out again: `model`, the cached object, gets its own modules back unchanged."""
    peft_model.unload()  # swaps the original modules back into `model` and returns it
    for attribute in ("peft_config", "_hf_peft_config_loaded"):
        if attribute in vars(model):
            delattr(model, attribute)


def _snapshots(model, keep):
    """snapshot() keeps the trainable weights at a step end; restore() puts them back. For LoRA they are
    small; for a full fine-tune the copy would double the memory, so it relies on the step-end stop."""
    import torch

    saved = {}

    def snapshot():
        if keep:
            for n, p in model.named_parameters():
                if p.requires_grad:
                    saved[n] = p.detach().clone()

    def restore():
        if saved:
            with torch.no_grad():
                for n, p in model.named_parameters():
                    if n in saved:
                        p.copy_(saved[n])

    return snapshot, restore


def _trainer(model, blocks, used, seed, callback):
    """transformers' Trainer over the training blocks, with our callback instead of its printing ones."""
    import torch
    from transformers import PrinterCallback, ProgressCallback, Trainer, TrainingArguments, default_data_collator

    workdir = tempfile.TemporaryDirectory(prefix="creative_magics_trainer_")
    on_cuda = model.device.type == "cuda"
    args = TrainingArguments(
        output_dir=workdir.name,
        num_train_epochs=used["epochs"],
        max_steps=used["max_steps"] or -1,
        learning_rate=used["lr"],
        per_device_train_batch_size=used["batch_size"],
        weight_decay=0.0,
        lr_scheduler_type="linear",
        logging_strategy="steps",
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=model.device.type == "cpu",
        bf16=on_cuda and torch.cuda.is_bf16_supported(),
        seed=seed,
        data_seed=seed,
        label_names=["labels"],
        dataloader_pin_memory=False,
        remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=_Blocks(blocks.train), data_collator=default_data_collator, callbacks=[callback])
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    try:
        from transformers.utils.notebook import NotebookProgressCallback

        trainer.remove_callback(NotebookProgressCallback)
    except ImportError:
        pass
    return trainer, workdir


def _metadata(name, base_name, base_spec, method, recipe, loss_before, loss_after, interrupted):
    return {
        "name": name,
        "base": base_name,
        "base_spec": {"name": base_spec.name, "family": base_spec.family, "kind": base_spec.kind, "source": base_spec.source},
        "method": method,
        "recipe": recipe,
        "held_out_loss_before": loss_before,
        "held_out_loss_after": loss_after,
        "interrupted": interrupted,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _write(trained, tokenizer, folder, info):
    """The adapter (LoRA) or the whole model (full), the tokenizer, and our metadata."""
    with quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trained.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
    finetuned.write_metadata(folder, info)
