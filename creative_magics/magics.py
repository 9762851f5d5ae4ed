"""The IPython magics. They parse flags, merge defaults through the Python API, and display; the
work happens in creative_magics.tasks. Errors a person can fix appear as one UsageError line."""

import functools
import shlex

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .errors import CreativeError
from .prompts import interpolate
from .settings import Settings


def user_errors(method):
    """Turn a CreativeError into a one-line UsageError (no traceback), and Ctrl-C into one line."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except CreativeError as err:
            raise UsageError(str(err)) from None
        except KeyboardInterrupt:
            print("Interrupted; the models stay loaded and usable.")

    return wrapper


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


_COMMANDS = ("models", "aliases [TASK]", "evict NAME|all", "device auto|cpu|cuda|mps")


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
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    right = {4, 5, 6}
    fmt = lambda cells: "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join(fmt(cells).rstrip() for cells in [headers, *lines])
