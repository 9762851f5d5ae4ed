"""The IPython magics. Their flags come from the parameter declarations (params.py) through IPython's own
@magic_arguments; each magic parses its line, calls the Python API and shows the result through a view.
Errors a person can fix appear as one UsageError line."""

import functools
import shlex

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from . import params as declared
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


# -- flags from the declarations -------------------------------------------------------------


def _comma_list(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def _argument(param):
    """The @argument of one declared parameter."""
    kwargs = {"help": param.help.replace("%", "%%")}
    if param.metavar:
        kwargs["metavar"] = param.metavar
    kind = param.kind
    if kind == "bool":
        kwargs.update(action="store_false" if param.negated else "store_true", default=None)
    elif kind in ("int", "seed"):
        kwargs["type"] = int
    elif kind == "float":
        kwargs["type"] = float
    elif kind == "floats":
        kwargs.update(type=float, nargs="+")
    elif kind == "texts":
        kwargs["nargs"] = "+"
    elif kind == "images":
        kwargs.update(nargs="+", action="extend")
    elif kind == "choices":
        kwargs["type"] = _comma_list
    elif kind in ("loras", "sweeps"):  # repeatable: --lora A --lora B:0.5, --sweep steps=10,20 --sweep guidance=3,7
        kwargs["action"] = "append"
    if param.all_flags[0].startswith("-"):
        kwargs["dest"] = param.name
    return argument(*param.all_flags, **kwargs)


def declared_flags(task, *extra):
    """Give a magic the flags of `task`'s declarations, then `extra` @argument's of its own (inputs
    such as --content, and -o), through IPython's @magic_arguments: the parser, its one-line
    UsageErrors and the `%%magic?` help all come from it."""

    def decorate(func):
        arguments = [_argument(p) for p in declared.of(task).params if p.magic] + list(extra)
        for each in reversed(arguments):  # @argument decorators apply bottom-up
            func = each(func)
        return magic_arguments()(func)

    return decorate


def split_line(line):
    """A magic line split like a shell would (quotes removed). A lone apostrophe, as in a prompt's "dragon's",
    is a letter, not an unclosed quote."""
    try:
        return shlex.split(line)
    except ValueError as err:
        lexer = shlex.shlex(line, posix=True)
        lexer.whitespace_split, lexer.quotes, lexer.commenters = True, '"', ""
        try:
            return list(lexer)
        except ValueError:
            raise CreativeError(f"cannot read the flags ({err}): check the quotes") from None


def parse_flags(magic, line):
    """Flags of a magic line, parsed by its @magic_arguments; the words of a line form's prompt may come
    between the flags as well as after them."""
    argv = split_line(line)
    parser = magic.parser
    if any(action.dest == "words" for action in parser._actions):
        return parser.parse_intermixed_args(argv)
    return parser.parse_args(argv)


def line_prompt(args, cell, what="prompt"):
    """The words after the flags (a line magic's prompt), or None; never both them and a cell body."""
    words = " ".join(getattr(args, "words", None) or [])
    if not words.strip():
        return None
    if cell is not None and cell.strip():
        raise CreativeError(f"give the {what} after the flags or in the cell body, not both")
    return words


def given_values(task, args):
    """{param: value} of the declared flags given on the line (None where not given)."""
    return {p.name: getattr(args, p.name, None) for p in declared.of(task).params if p.magic}


def _name(value):
    if not value.isidentifier():
        raise CreativeError(f"-o needs a Python variable name, not {value!r}")
    return value


def _output(what):
    return argument("-o", "--output", metavar="NAME", help=f"store the result ({what}) in this variable")


def _words(magic):
    return argument(
        "words", nargs="*", metavar="PROMPT",
        help=f"as a line magic, %%{magic} PROMPT...: the words after the flags are the prompt "
        f"(after a flag that takes several values, such as --stop, write -- first)",
    )


_RECIPE = argument(
    "--recipe", metavar="PATH|VAR", help="make it again from a recipe: a PNG (ours or AUTOMATIC1111's), or a variable holding a result or recipe; flags win"
)


_BATCH = (
    argument("--batch", metavar="FILE|VAR", help="run once per item: a text file (one prompt per line) or a variable holding a list of "
             "strings or dicts of parameters; the line's flags (and the cell body) are every item's defaults"),
    argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
             help="with --batch: spread the items over Ray workers that keep their models warm; no ADDRESS starts a local Ray, "
             "auto or ray://HOST:10001 joins a cluster"),
    argument("--workers", type=int, default=None, metavar="N", help="with --ray: how many workers (default: one per GPU, else per CPU)"),
)


@magics_class
class CreativeMagics(Magics, Settings):
    """%%story, %%paint, %%stylize, %%compose, %%finetune and %creative. Options: %config CreativeMagics."""

    def _prompt(self, cell):
        return interpolate(cell or "", self.shell.user_ns)

    def _recipe(self, args):
        from . import refs

        return refs.recipe(args.recipe, self.shell.user_ns) if getattr(args, "recipe", None) is not None else None

    def _run(self, task, view, call, output=None):
        """call(**callbacks) -> result, shown by `view` and kept in `output` (-o); a failed call leaves no live display."""
        try:
            result = call(**view.callbacks())
        except BaseException:
            view.close()
            raise
        view.finish(result)
        if output:
            self.shell.user_ns[output] = result
        return result

    def _batch(self, task, args, text, recipe, output):
        """--batch: the items through creative_magics.batch, the line's flags (and the cell's text) as their defaults."""
        from . import batches
        from .views import BatchView

        defaults = {name: value for name, value in given_values(task, args).items() if value is not None}
        if text is not None and str(text).strip():
            defaults[batches.TEXT_INPUT[task]] = text
        address = None if args.ray in (None, "local") else args.ray
        call = lambda **shown: batches.batch(
            task, args.batch, "ray" if args.ray is not None else "local", address, args.workers, defaults=defaults, _given_as="flag",
            _namespace=self.shell.user_ns, **shown,
        )
        self._run(task, BatchView(task), call, output)

    @staticmethod
    def _batching(args):
        """True with --batch; --ray or --workers without it is one line."""
        if args.batch is None:
            if args.ray is not None or args.workers is not None:
                raise CreativeError("--ray and --workers spread a batch: add --batch FILE|VAR")
            return False
        if getattr(args, "recipe", None) is not None:
            raise CreativeError("--batch and --recipe: give one of them (a batch item may hold its own recipe)")
        return True

    # -- %%story ------------------------------------------------------------------------

    @declared_flags(
        "story", _RECIPE, _output(".text, .texts, .recipe; .branches, .tokens"), *_BATCH, _words("story"),
        argument("--chat", metavar="NAME", help="the cell is your turn in the chat held in variable NAME (made when absent); "
                 "the instruct model's reply is added to it"),
    )
    @line_cell_magic
    @user_errors
    def story(self, line, cell=None):
        """Write a story or poem; the cell body is the prompt (`{name}` inserts a variable).
        As a line magic, `%story [flags] PROMPT...` takes the words after the flags as the prompt.
        `%story continue [NAME] [flags]` writes on from where a story stopped (the latest, or NAME's);
        `%story again [NAME]` draws its last sample again with a new seed (a branch, kept on `.branches`).
        `%%story --chat NAME` adds the cell to the chat in NAME and appends the model's reply."""
        from . import api
        from .views import StoryView

        words = split_line(line)
        if cell is None and words and words[0] in ("continue", "again"):
            return self._story_step(words[0], words[1:])
        args = parse_flags(self.story, line)
        batching = self._batching(args)
        output = _name(args.output) if args.output else None
        if args.chat is not None:
            return self._story_chat(args, cell, output)
        recipe = self._recipe(args)
        cell = line_prompt(args, cell) or cell
        prompt = self._prompt(cell) if (cell or "").strip() or recipe is None else None
        if batching:
            return self._batch("story", args, prompt, recipe, output)
        call = lambda **shown: api.story(
            prompt, recipe=recipe, _given_as="flag", _namespace=self.shell.user_ns, _output=output, **shown, **given_values("story", args)
        )
        self._run("story", StoryView(), call, output)

    def _story_step(self, step, words):
        """%story continue|again [NAME] [flags]."""
        from . import api
        from .views import StoryView

        args = parse_flags(self.story, shlex.join(words))
        if args.recipe is not None or args.chat is not None:
            raise CreativeError(f"%story {step} works on a story (NAME, or the latest): it takes no --recipe or --chat")
        names = args.words or []
        if len(names) > 1:
            raise CreativeError(f"%story {step} takes one NAME (a variable holding a story or a chat), not {' '.join(names)!r}")
        output = _name(args.output) if args.output else None
        run = api.continue_story if step == "continue" else api.again
        call = lambda **shown: run(
            names[0] if names else None, _given_as="flag", _namespace=self.shell.user_ns, _output=output, **shown, **given_values("story", args)
        )
        self._run("story", StoryView(), call, output)

    def _story_chat(self, args, cell, output):
        """%%story --chat NAME: the cell is the user's turn in the Chat held in NAME."""
        from . import api
        from .results import Chat
        from .views import StoryView

        name = args.chat
        if not name.isidentifier():
            raise CreativeError(f"--chat needs a Python variable name for the chat, not {name!r}")
        if args.recipe is not None:
            raise CreativeError("--chat adds a turn to a chat: it takes no --recipe")
        message = line_prompt(args, cell, what="message") or cell
        if not (message or "").strip():
            raise CreativeError(f"the message is empty: write your turn of the chat in the body of the %%story --chat {name} cell")
        existing = self.shell.user_ns.get(name)
        if existing is not None and not isinstance(existing, Chat):
            raise CreativeError(f"{name!r} holds a {type(existing).__name__}, not a Chat: choose another name for the chat")
        conversation = existing if existing is not None else Chat()
        call = lambda **shown: api.chat(
            conversation, self._prompt(message), _given_as="flag", _namespace=self.shell.user_ns, **shown, **given_values("story", args)
        )
        self._run("story", StoryView(), call, output)
        self.shell.user_ns[name] = conversation

    # -- %%paint ------------------------------------------------------------------------

    @declared_flags("paint", _RECIPE, _output(".images, .image, .seeds, .recipe"), *_BATCH, _words("paint"))
    @line_cell_magic
    @user_errors
    def paint(self, line, cell=None):
        """Paint a picture; the cell body is the prompt (`{name}` inserts a variable).
        As a line magic, `%paint [flags] PROMPT...` takes the words after the flags as the prompt, and
        `%paint --recipe PATH` re-runs a recipe with its own prompt."""
        from . import api
        from .views import ImageView

        args = parse_flags(self.paint, line)
        batching = self._batching(args)
        output = _name(args.output) if args.output else None
        recipe = self._recipe(args)
        cell = line_prompt(args, cell) or cell
        prompt = self._prompt(cell) if (cell or "").strip() or recipe is None else None
        if batching:
            return self._batch("paint", args, prompt, recipe, output)
        call = lambda **shown: api.paint(
            prompt, recipe=recipe, _given_as="flag", _namespace=self.shell.user_ns, _output=output, **shown, **given_values("paint", args)
        )
        self._run("paint", ImageView(), call, output)

    # -- %%stylize ----------------------------------------------------------------------

    @declared_flags(
        "stylize",
        argument("--content", metavar="IMAGE", help="the image to restyle: a file, a URL, a variable, last or canvas"),
        argument("--style", metavar="IMAGE", nargs="+", action="extend",
                 help="style image(s), several blend (see --style-blend); for --method cyclegan a painter: monet, vangogh, cezanne or ukiyoe"),
        _RECIPE,
        _output(".image, .images, .recipe"),
    )
    @line_cell_magic
    @user_errors
    def stylize(self, line, cell=None):
        """Restyle --content after --style images (Gatys; AdaIN in one pass), as a painter (CycleGAN), or after a
        text style in the cell body (--method img2img). Without a text style use the line form,
        `%stylize --content A --style B`. With --live (AdaIN) every stroke on the style canvas runs it again."""
        from . import api
        from .views import ImageView

        args = parse_flags(self.stylize, line)
        output = _name(args.output) if args.output else None
        recipe = self._recipe(args)
        prompt = self._prompt(cell) if cell and cell.strip() else None
        values = given_values("stylize", args)
        live = values.pop("live", None)
        if live:
            from .widgets import live as live_mode

            live_mode.check(values.get("method"), args.content, args.style, recipe)
        call = lambda **shown: api.stylize(
            args.content, args.style, prompt=prompt, recipe=recipe, _given_as="flag", _namespace=self.shell.user_ns, _output=output,
            **shown, **values,
        )
        self._run("stylize", ImageView(label="stylize"), call, output)
        if live:
            from IPython.display import display

            from .session import current
            from .widgets.canvas import start_live

            display(start_live(current().last_call("stylize")))

    # -- %%compose ----------------------------------------------------------------------

    @declared_flags(
        "compose",
        argument("--save", metavar="PATH", help="write the music to PATH: a .wav with the recipe inside, or with --midi a .mid "
                 "(several pieces: PATH-1.wav, ...)"),
        _RECIPE,
        _output(".audio, .sample_rate, .recipe; with --midi also .midi and .notes"),
        *_BATCH,
    )
    @line_cell_magic
    @user_errors
    def compose(self, line, cell=None):
        """Compose music from a description in the cell body (`{name}` inserts a variable). With --midi it
        writes notes (a MIDI file) instead of audio, and the description is optional: `%compose --midi`."""
        from . import api, audio, midi
        from .views import AudioView

        args = parse_flags(self.compose, line)
        batching = self._batching(args)
        output = _name(args.output) if args.output else None
        recipe = self._recipe(args)
        wants_midi = bool(args.midi) or bool(((recipe or {}).get("params") or {}).get("midi"))
        save = None
        if args.save is not None:
            save = midi.check_midi_path(args.save) if wants_midi else audio.check_wav_path(args.save)
        has_body = bool((cell or "").strip())
        description = self._prompt(cell) if has_body or (recipe is None and not wants_midi) else None
        if batching:
            if save:
                raise CreativeError("--save writes one piece: save the items of a batch from its result (result[i].save(PATH))")
            return self._batch("compose", args, description, recipe, output)
        call = lambda **shown: api.compose(
            description, recipe=recipe, _given_as="flag", _namespace=self.shell.user_ns, _output=output, **shown, **given_values("compose", args)
        )
        result = self._run("compose", AudioView(), call, output)
        if save:
            for path in result.save(save):
                print(f"Saved {path} (the recipe is inside: creative_magics.audio.read_recipe)")

    # -- %%finetune ---------------------------------------------------------------------

    @declared_flags(
        "finetune",
        argument("name", help="what to call the adapted model; then use it with %%story -m NAME"),
        argument("--data", metavar="PATH|VAR", help="a .txt file, a folder of .txt files, a .jsonl file (a 'text' field per line), "
                 "or a variable holding a string or a list of strings; else the cell body"),
        argument("--overwrite", action="store_true", help="replace a model or alias that already has this name"),
    )
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
        data = args.data if args.data is not None else [cell]
        call = lambda **shown: api.finetune(
            args.name, data, overwrite=args.overwrite, _given_as="flag", _namespace=self.shell.user_ns,
            _data_is_name_or_path=args.data is not None, **shown, **given_values("finetune", args),
        )
        self._run("finetune", FinetuneView(), call)

    # -- %creative ------------------------------------------------------------------------

    @line_magic
    @user_errors
    def creative(self, line):
        """%creative models | endpoints | aliases [TASK] | evict NAME|all | device auto|cpu|cuda|mps | panel | canvas | gallery | workers [stop]"""
        from . import control

        try:
            words = shlex.split(line)
        except ValueError as err:
            raise CreativeError(f"cannot read the command ({err}): check the quotes") from None
        return control.run(self, words)
