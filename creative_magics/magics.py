"""The IPython magics. They parse flags, merge defaults through the Python API, and display; the
work happens in creative_magics.tasks. Errors a person can fix appear as one UsageError line."""

import functools
import shlex

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .errors import CreativeError
from .prompts import interpolate
from .settings import Settings


def user_errors(method):
    """Turn a CreativeError into a one-line UsageError (no traceback), and Ctrl-C into one line."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            outcome = method(self, *args, **kwargs)
        except CreativeError as err:
            raise UsageError(str(err)) from None
        except KeyboardInterrupt:
            print("Interrupted; the models stay loaded and usable.")
        else:
            _note_magic(method.__name__, args)  # widgets: what the panel's "Run again" runs
            return outcome

    return wrapper


def _note_magic(name, args):
    """Widgets (issue 6): a cell magic that ran to the end is remembered for the panel's "Run again"."""
    if len(args) == 2 and isinstance(args[0], str) and isinstance(args[1], str):
        from .session import current

        current().note_magic(name, args[0], args[1])


def parse_flags(magic, line):
    """Flags of a magic line, split like a shell would (quotes removed), parsed by its @magic_arguments."""
    try:
        argv = shlex.split(line)
    except ValueError as err:
        raise CreativeError(f"cannot read the flags ({err}): check the quotes") from None
    return magic.parser.parse_args(argv)


def _name(value):
    if not value.isidentifier():
        raise CreativeError(f"-o needs a Python variable name, not {value!r}")
    return value


@magics_class
class CreativeMagics(Magics, Settings):
    """%%story, %%paint, %%stylize, %%compose, %%finetune and %creative. Options: %config CreativeMagics."""

    def _store(self, name, result):
        if name:
            self.shell.user_ns[name] = result

    def _prompt(self, cell):
        return interpolate(cell or "", self.shell.user_ns)

    # -- %%story ------------------------------------------------------------------------

    @magic_arguments()
    @argument("-m", "--model", help="alias, hub id or local folder (default: smollm2; %%creative aliases lists them)")
    @argument("--temperature", type=float, help="randomness: 0 = greedy, 0.7 focused, 1.2 wild")
    @argument("--top-p", type=float, help="nucleus sampling: keep the most likely tokens up to this probability mass (0-1]")
    @argument("--top-k", type=int, help="keep only the K most likely tokens (0 = off)")
    @argument("--min-p", type=float, help="drop tokens less likely than min-p x the most likely one (0 = off)")
    @argument("--repetition-penalty", type=float, help="> 1 discourages repeating tokens")
    @argument("--no-repeat-ngram", type=int, help="never repeat an n-gram of this size (0 = off)")
    @argument("--max-new-tokens", type=int, help="length limit of each text, in tokens")
    @argument("--min-new-tokens", type=int, help="write at least this many tokens")
    @argument("--seed", type=int, help="seed for sampling (drawn and recorded when not given)")
    @argument("-n", type=int, help="number of samples")
    @argument("--system", help="system message for instruct models")
    @argument("--stop", nargs="+", metavar="STR", help="stop at any of these strings (\\n = newline)")
    @argument("--no-stream", action="store_true", help="show the text when finished instead of as it comes")
    @argument("--greedy", action="store_true", default=None, help="always take the most likely token (no sampling)")
    @argument("-o", "--output", metavar="NAME", help="store the result (.text, .texts, .recipe) in this variable")
    @cell_magic
    @user_errors
    def story(self, line, cell):
        """Write a story or poem; the cell body is the prompt (`{name}` inserts a variable)."""
        from . import api
        from .views import StoryView

        args = parse_flags(self.story, line)
        output = _name(args.output) if args.output else None
        params = {
            "model": args.model,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "top_k": args.top_k,
            "min_p": args.min_p,
            "repetition_penalty": args.repetition_penalty,
            "no_repeat_ngram": args.no_repeat_ngram,
            "max_new_tokens": args.max_new_tokens,
            "min_new_tokens": args.min_new_tokens,
            "seed": args.seed,
            "n": args.n,
            "system": args.system,
            "stop": args.stop,
            "greedy": args.greedy,
            "stream": False if args.no_stream else None,
        }
        prompt = self._prompt(cell)
        view = StoryView()
        result = api.story(prompt, on_text=view.update, _given="flag", **params)
        view.finish(result)
        self._store(output, result)

    # -- %%paint ------------------------------------------------------------------------

    @magic_arguments()
    @argument("-m", "--model", help="alias, hub id or local folder (default: sd-turbo; %%creative aliases paint lists them)")
    @argument("--negative", metavar="TEXT", help="what the picture should not show (needs --guidance above 1)")
    @argument("--steps", type=int, help="denoising steps (default: the model's, e.g. 1 for SD-Turbo, 25 for SD 1.5)")
    @argument("--guidance", type=float, help="how closely to follow the prompt (CFG scale; 0-1 = off, as SD-Turbo wants)")
    @argument("--width", type=int, help="pixels, a multiple of 8 (default: the model's size)")
    @argument("--height", type=int, help="pixels, a multiple of 8 (default: the model's size)")
    @argument("--seed", type=int, help="seed of the first image; image i uses seed + i (drawn and recorded when not given)")
    @argument("-n", type=int, help="number of images (a batch, shown as one grid)")
    @argument("--scheduler", metavar="NAME", help="euler, euler_a, dpm++, ddim, lcm (LCM models), or default (the model's own)")
    @argument("--init", metavar="IMAGE", help="start from this image (image-to-image): a file, a URL, a variable, last or canvas")
    @argument("--strength", type=float, help="with --init: how much to repaint, in (0, 1] (default 0.75; 0.5 for Turbo models)")
    @argument("--save", metavar="DIR", help="also write the images as PNGs with their recipes into this folder")
    @argument("--recipe", metavar="PATH", help="re-run the recipe of a PNG (ours or AUTOMATIC1111's), or of a variable holding a result or recipe; flags win")
    @argument("-o", "--output", metavar="NAME", help="store the result (.images, .image, .seeds, .recipe) in this variable")
    @line_cell_magic
    @user_errors
    def paint(self, line, cell=None):
        """Paint a picture; the cell body is the prompt (`{name}` inserts a variable).
        As a line magic, `%paint --recipe PATH` re-runs a recipe with its own prompt."""
        from . import api
        from .views import ImageView

        args = parse_flags(self.paint, line)
        output = _name(args.output) if args.output else None
        params = {
            "model": args.model,
            "negative": args.negative,
            "steps": args.steps,
            "guidance": args.guidance,
            "width": args.width,
            "height": args.height,
            "seed": args.seed,
            "n": args.n,
            "scheduler": args.scheduler,
            "init": args.init,
            "strength": args.strength,
            "save": args.save,
        }
        recipe = self._paint_recipe(args.recipe) if args.recipe is not None else None
        prompt = self._prompt(cell) if (cell or "").strip() or recipe is None else None
        view = ImageView()
        try:
            result = api.paint(
                prompt,
                recipe=recipe,
                on_step=view.step,
                on_preview=view.preview if view.wants_previews else None,
                _given="flag",
                _namespace=self.shell.user_ns,
                **params,
            )
        except BaseException:
            view.close()
            raise
        view.finish(result)
        self._store(output, result)

    def _paint_recipe(self, value):
        """--recipe names a PNG file, or a variable holding a recipe dict, a result or an image."""
        from .media import read_recipe

        if value.isidentifier() and value in self.shell.user_ns:
            held = self.shell.user_ns[value]
            if isinstance(held, dict):
                return held
            held_recipe = getattr(held, "recipe", None)
            return held_recipe if isinstance(held_recipe, dict) else read_recipe(held)
        return read_recipe(value)

    # -- %%stylize ----------------------------------------------------------------------

    @magic_arguments()
    @argument("--content", metavar="IMAGE", help="the image to restyle: a file, a URL, a variable, last or canvas")
    @argument("--style", metavar="IMAGE", nargs="+", action="extend", help="style image(s); several blend (see --style-blend)")
    @argument("--style-blend", metavar="W", nargs="+", type=float, help="weights of the style images, in order (default: equal)")
    @argument("--method", metavar="NAME", help="gatys (neural style transfer on VGG19, the default) or img2img (a text style in the cell body)")
    @argument("-m", "--model", help="gatys: VGG19 weights (default vgg19); img2img: a paint model (default sd-turbo)")
    @argument("--steps", type=int, help="gatys: iterations (default 300); img2img: denoising steps")
    @argument("--size", type=int, metavar="PX", help="longer side of the result, 32-2048 (default 512; 256 on the CPU)")
    @argument("--style-weight", type=float, metavar="W", help="how strongly to match the style (default 1e6)")
    @argument("--content-weight", type=float, metavar="W", help="how strongly to keep the content (default 1)")
    @argument("--tv-weight", type=float, metavar="W", help="smoothness: total-variation weight (default 1e-6)")
    @argument("--init", metavar="FROM", help="start from the content (default) or from noise")
    @argument("--optimizer", metavar="NAME", help="lbfgs (default; few iterations, sharp) or adam")
    @argument("--lr", type=float, help="optimizer step size (default 1 for lbfgs, 0.02 for adam)")
    @argument("--preserve-color", action="store_true", default=None, help="keep the content's colours (luminance-only transfer)")
    @argument("--style-layers", metavar="LAYERS", help="VGG19 layers for the style, comma-separated (default conv1_1,conv2_1,conv3_1,conv4_1,conv5_1)")
    @argument("--content-layer", metavar="LAYER", help="VGG19 layer for the content (default conv4_2)")
    @argument("--strength", type=float, help="img2img: how much to repaint, in (0, 1]")
    @argument("--guidance", type=float, help="img2img: how closely to follow the text style")
    @argument("--seed", type=int, help="seed (noise init; img2img sampling), drawn and recorded when not given")
    @argument("-o", "--output", metavar="NAME", help="store the result (.image, .images, .recipe) in this variable")
    @line_cell_magic
    @user_errors
    def stylize(self, line, cell=None):
        """Restyle --content after --style images (Gatys), or after a text style in the cell body (--method img2img).
        Without a text style use the line form, `%stylize --content A --style B`."""
        from . import api
        from .views import ImageView

        args = parse_flags(self.stylize, line)
        output = _name(args.output) if args.output else None
        params = {
            "method": args.method,
            "model": args.model,
            "steps": args.steps,
            "size": args.size,
            "style_weight": args.style_weight,
            "content_weight": args.content_weight,
            "tv_weight": args.tv_weight,
            "init": args.init,
            "optimizer": args.optimizer,
            "lr": args.lr,
            "preserve_color": args.preserve_color,
            "style_layers": [layer.strip() for layer in args.style_layers.split(",") if layer.strip()] if args.style_layers else None,
            "content_layer": args.content_layer,
            "style_blend": args.style_blend,
            "strength": args.strength,
            "guidance": args.guidance,
            "seed": args.seed,
        }
        prompt = self._prompt(cell) if cell and cell.strip() else None
        view = ImageView(label="stylize")
        try:
            result = api.stylize(
                args.content,
                args.style,
                prompt=prompt,
                on_step=view.step,
                on_preview=view.preview if view.wants_previews else None,
                _given="flag",
                _namespace=self.shell.user_ns,
                **params,
            )
        except BaseException:
            view.close()
            raise
        view.finish(result)
        self._store(output, result)

    # -- %%compose ----------------------------------------------------------------------

    @magic_arguments()
    @argument("-m", "--model", help="alias, hub id or local folder (default: musicgen-small; %%creative aliases compose lists them)")
    @argument("--seconds", type=float, help="length of the music in seconds (default 10)")
    @argument("--guidance", type=float, help="how closely to follow the description: classifier-free guidance (model default 3; 1 or less = off)")
    @argument("--temperature", type=float, help="randomness of the sampling: 0 = greedy, 1 = the model's own odds")
    @argument("--top-k", type=int, help="sample among the K most likely audio codes (default 250; 0 = all)")
    @argument("--seed", type=int, help="seed for sampling (drawn and recorded when not given)")
    @argument("-n", type=int, help="number of pieces")
    @argument("--melody", metavar="AUDIO", help="a WAV file, or a variable holding an audio result, whose melody to follow (melody models: musicgen-melody)")
    @argument("--save", metavar="PATH", help="write the music to PATH (.wav, the recipe inside; several pieces: PATH-1.wav, ...)")
    @argument("-o", "--output", metavar="NAME", help="store the result (.audio, .sample_rate, .recipe) in this variable")
    @cell_magic
    @user_errors
    def compose(self, line, cell):
        """Compose music from a description in the cell body (`{name}` inserts a variable)."""
        from . import api, audio
        from .views import AudioView

        args = parse_flags(self.compose, line)
        output = _name(args.output) if args.output else None
        save = audio.check_wav_path(args.save) if args.save is not None else None
        params = {
            "model": args.model,
            "seconds": args.seconds,
            "guidance": args.guidance,
            "temperature": args.temperature,
            "top_k": args.top_k,
            "seed": args.seed,
            "n": args.n,
            "melody": self._melody(args.melody),
        }
        view = AudioView()
        try:
            result = api.compose(self._prompt(cell), on_progress=view.progress, _given="flag", **params)
        except BaseException:
            view.close()
            raise
        self._store(output, result)
        view.finish(result)
        if save:
            for path in result.save(save):
                print(f"Saved {path} (the recipe is inside: creative_magics.audio.read_recipe)")

    def _melody(self, value):
        """--melody VAR names a variable holding an audio result; anything else is a path."""
        if value is not None and value.isidentifier() and value in self.shell.user_ns:
            held = self.shell.user_ns[value]
            if hasattr(held, "audio") and hasattr(held, "sample_rate"):
                return held
        return value

    # -- %%finetune ---------------------------------------------------------------------

    @magic_arguments()
    @argument("name", help="what to call the adapted model; then use it with %%story -m NAME")
    @argument("--base", help="the model to adapt (default: the story model)")
    @argument("--data", metavar="PATH|VAR", help="a .txt file, a folder of .txt files, a .jsonl file (a 'text' field per line), or a variable holding a string or a list of strings; else the cell body")
    @argument("--epochs", type=float, help="passes over the texts (default 3)")
    @argument("--max-steps", type=int, help="stop after this many training steps (overrides --epochs)")
    @argument("--lr", type=float, help="learning rate (default 5e-4 for LoRA, 5e-5 with --full)")
    @argument("--batch-size", type=int, help="blocks per training step (default 4)")
    @argument("--block-size", type=int, help="tokens per training block (default 128, at most the model's context)")
    @argument("--lora-r", type=int, help="LoRA rank (default 8)")
    @argument("--lora-alpha", type=float, help="LoRA scale alpha (default 16)")
    @argument("--full", action="store_true", default=None, help="train every weight (small models) instead of a LoRA adapter")
    @argument("--eval-split", type=float, help="share of the blocks held out to measure perplexity (default 0.1; 0 = none)")
    @argument("--seed", type=int, help="seed for the held-out split, LoRA init and batch order (drawn and recorded when not given)")
    @argument("--overwrite", action="store_true", help="replace a model or alias that already has this name")
    @line_cell_magic
    @user_errors
    def finetune(self, line, cell=None):
        """Adapt a text model to your own texts (the cell body, or --data) and save it as NAME.

        Also a line magic, `%finetune NAME --data PATH|VAR`, since IPython refuses a %%magic with an empty body.
        """
        from . import api
        from .views import FinetuneView

        args = parse_flags(self.finetune, line)
        body = cell if cell and cell.strip() else None
        if args.data is not None and body is not None:
            raise CreativeError("give the texts in the cell body or with --data, not both")
        if args.data is None and cell is None:
            raise CreativeError("no texts to learn from: write them in the body of a %%finetune cell, or pass --data PATH|VAR")
        data = self._finetune_data(args.data) if args.data is not None else [cell]
        params = {
            "base": args.base,
            "epochs": args.epochs,
            "max_steps": args.max_steps,
            "lr": args.lr,
            "batch_size": args.batch_size,
            "block_size": args.block_size,
            "lora_r": args.lora_r,
            "lora_alpha": args.lora_alpha,
            "full": args.full,
            "eval_split": args.eval_split,
            "seed": args.seed,
        }
        view = FinetuneView()
        try:
            result = api.finetune(args.name, data, overwrite=args.overwrite, on_progress=view.update, _given="flag", **params)
        except BaseException:
            view.close()
            raise
        view.finish(result)

    def _finetune_data(self, value):
        """--data VAR names a variable of the notebook; anything else is a path."""
        import pathlib

        if value.isidentifier() and value in self.shell.user_ns:
            return self.shell.user_ns[value]
        return pathlib.Path(value)

    # -- %creative ------------------------------------------------------------------------

    @line_magic
    @user_errors
    def creative(self, line):
        """%creative models | aliases [TASK] | evict NAME|all | device auto|cpu|cuda|mps"""
        try:
            words = shlex.split(line)
        except ValueError as err:
            raise CreativeError(f"cannot read the command ({err}): check the quotes") from None
        command, rest = (words[0], words[1:]) if words else ("help", [])
        handler = getattr(self, f"_creative_{command}", None)
        if handler is None:
            raise CreativeError(f"unknown command {command!r}; try: %creative {' | '.join(_COMMANDS)}")
        return handler(*rest)

    def _creative_help(self, *rest):
        print("%creative " + "\n%creative ".join(_COMMANDS))

    def _creative_models(self, *rest):
        from .session import current

        rows = current().cache.table()
        _add_finetune_bases(rows)
        if not rows:
            print("No models are loaded yet; each loads on its first use.")
            return
        print(format_table(rows))

    def _creative_aliases(self, *rest):
        from .models import BUILTIN_ALIASES, DEFAULT_MODELS, TASK_FAMILY
        from .session import current

        tasks = rest or sorted(DEFAULT_MODELS)
        profile = current().effective_profile()
        for task in tasks:
            if task not in DEFAULT_MODELS:
                raise CreativeError(f"unknown task {task!r}; tasks: {', '.join(sorted(DEFAULT_MODELS))}")
            print(f"{task} (default {DEFAULT_MODELS[task]}):")
            for name, alias in sorted(BUILTIN_ALIASES.items()):
                if alias.family == TASK_FAMILY[task]:
                    target = alias.tiny if profile == "tiny" else alias.source
                    print(f"  {name:<16} {target:<45} {alias.note}")
        for name, target in sorted(self.aliases.items()):
            print(f"  {name:<16} {target:<45} (yours)")
        if "story" in tasks:
            _print_finetuned()

    def _creative_evict(self, name=None, *rest):
        from .session import current

        if name is None or rest:
            raise CreativeError("usage: %creative evict NAME|all")
        dropped = current().cache.evict(name)
        print(f"Evicted {', '.join(dropped)}." if dropped else "Nothing evicted: the models are in use.")

    def _creative_device(self, device=None, *rest):
        from .session import current

        if device is None:
            from .devices import resolve_device

            print(f"device: {self.device} (now {resolve_device(self.device)})")
            return
        if rest:
            raise CreativeError("usage: %creative device auto|cpu|cuda|cuda:N|mps")
        from traitlets import TraitError

        before = self.device
        try:
            self.device = device
            placed = current().cache.move_all(self.device)
        except TraitError as err:
            raise CreativeError(str(err)) from None
        except CreativeError:
            self.device = before  # a device that is not here changes nothing
            raise
        print(f"Models now run on {placed}.")

    # -- widgets (issue 6): %creative panel | canvas | gallery ----------------------------------

    def _creative_panel(self, *rest):
        if rest:
            raise CreativeError("usage: %creative panel")
        from IPython.display import display

        from .widgets import panel

        display(panel.open_panel())

    def _creative_canvas(self, *rest):
        from IPython.display import display

        from .widgets import canvas

        width, height = canvas.parse_size_flags(rest)
        display(canvas.open_canvas(width=width, height=height))

    def _creative_gallery(self, *rest):
        if rest:
            raise CreativeError("usage: %creative gallery")
        from IPython.display import display

        from .widgets import gallery

        display(gallery.open_gallery())


_COMMANDS = ("models", "aliases [TASK]", "evict NAME|all", "device auto|cpu|cuda|mps")
_COMMANDS += ("panel", "canvas [--width W --height H]", "gallery")  # widgets (issue 6)


def format_table(rows):
    headers = ("name", "task", "device", "dtype", "size MB", "loads", "hits", "last used")
    lines = [
        (
            r["name"] + (" *" if r["in_use"] else ""),
            r["task"],
            r["device"],
            r["dtype"],
            f"{r['size_mb']:.1f}",
            str(r["loads"]),
            str(r["hits"]),
            f"{r['last_used_s']:.0f} s ago",
        )
        for r in rows
    ]
    if any(r.get("base") for r in rows):  # %%finetune: fine-tuned models show what they adapt
        headers += ("base",)
        lines = [line + (r.get("base") or "",) for line, r in zip(lines, rows)]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    right = {4, 5, 6}
    fmt = lambda cells: "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join(fmt(cells).rstrip() for cells in [headers, *lines])


# -- %%finetune: fine-tuned models in %creative models / aliases ----------------------------------


def _add_finetune_bases(rows):
    """Give each warm fine-tuned model's row a `base` ('LoRA on gpt2'), read from its folder."""
    import os

    from . import adapters

    for row in rows:
        source = row.get("source")
        if source and os.path.isdir(source):
            data = adapters.metadata(source)
            if data is not None:
                row["base"] = adapters.describe(data)


def _print_finetuned():
    from . import adapters

    for name, data in adapters.registered().items():
        print(f"  {name:<16} {adapters.describe(data):<45} (fine-tuned)")
