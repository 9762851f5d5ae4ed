"""What the magics and the Python API return: the output and the recipe that reproduces it."""

import html
import re
from dataclasses import dataclass, field


@dataclass(eq=False)
class StoryResult:
    """Text made by %%story. `.text` is the first sample, `.texts` all of them; `.branches` the samples
    `%story again` drew from the same place (this one among them); `.tokens` with --show-probs."""

    texts: list
    recipe: dict
    prompt: str = ""
    shown_prompt: str = ""
    interrupted: bool = False
    kind: str = field(default="text", init=False)
    # each sample's token ids, the context included (what %story continue writes on from); local models only
    ids: list = field(default=None, repr=False)
    prompt_tokens: int = field(default=0, repr=False)  # where the story's own text starts in `ids`
    token_lists: list = field(default=None, repr=False)  # --show-probs: `.tokens` of each sample
    parent: object = field(default=None, repr=False)  # the story this one continues (%story continue)
    chat: object = field(default=None, repr=False)  # the Chat this is a reply of (%%story --chat)
    _branches: list = field(default=None, repr=False)

    @property
    def text(self):
        return self.texts[0] if self.texts else ""

    @property
    def branches(self):
        """Every draw from the same place, in order: the first sample, then each `%story again`."""
        return list(self._branches) if self._branches else [self]

    def add_branch(self, other):
        """Keep `other` (a redraw of this one) among the branches of this one and of `other`."""
        if self._branches is None:
            self._branches = [self]
        self._branches.append(other)
        other._branches = self._branches

    @property
    def tokens(self):
        """--show-probs: [(text, prob, [(alternative, prob), ...])] of each new token of the first sample
        (None when not asked for)."""
        return self.token_lists[0] if self.token_lists else None

    def markdown(self):
        return story_markdown(self.shown_prompt, self.texts, self.recipe.get("seed"), self.interrupted)

    def html(self):
        """--show-probs: each new token shaded by how unlikely it was, its alternatives on hover (title)."""
        return probs_html(self.shown_prompt, self.token_lists or [], self.interrupted) if self.token_lists else None

    def _repr_markdown_(self):
        return None if self.token_lists else self.markdown()

    def _repr_html_(self):
        return self.html()

    def _repr_pretty_(self, printer, cycle):
        printer.text(repr(self))

    def __str__(self):
        return self.text

    def __repr__(self):
        model, seed = self.recipe.get("model"), self.recipe.get("seed")
        head = self.text[:60].replace("\n", " ")
        more = f", {len(self.texts)} samples" if len(self.texts) > 1 else ""
        if len(self.branches) > 1:
            more += f", branch {self.branches.index(self) + 1} of {len(self.branches)}"
        return f"<StoryResult {model} seed={seed}{more}: {head!r}{'...' if len(self.text) > 60 else ''}>"


def _shade(prob):
    """The background of a token: clear when the model was sure, orange as it hesitated."""
    return f"rgba(255, 140, 0, {0.6 * (1 - prob):.2f})"


def probs_html(shown_prompt, token_lists, interrupted=False):
    """The samples as HTML: each token a span shaded by its probability, with the top alternatives in its
    title (shown on hover by every browser: no script, so JupyterLab, Notebook 7 and Colab all show it)."""
    parts = []
    for index, tokens in enumerate(token_lists):
        spans = []
        for text, prob, alternatives in tokens:
            if not text:
                continue
            title = f"p = {prob:.2f}\n" + "\n".join(f"{alt!r} {p:.2f}" for alt, p in alternatives)
            spans.append(f'<span style="background-color: {_shade(prob)}" title="{escape_html(title)}">{escape_html(text)}</span>')
        head = f"<b>Sample {index + 1}</b><br>" if len(token_lists) > 1 else ""
        prompt = f"<b>{escape_html(shown_prompt)}</b>" if shown_prompt else ""
        parts.append(f'<div style="white-space: pre-wrap; line-height: 1.6">{head}{prompt}{"".join(spans)}</div>')
    legend = '<div style="font-size: smaller; opacity: 0.7">shaded by how unlikely each token was; hover a token for the model\'s top 5</div>'
    return "<hr>".join(parts) + ("<div><i>(stopped)</i></div>" if interrupted else "") + legend


@dataclass(eq=False)
class Chat:
    """A conversation with an instruct model (%%story --chat NAME): `.messages` (user and assistant turns,
    {"role", "content"}), `.system`, `.model`. Shows as a conversation; `.save(path)` / `Chat.load(path)` as JSON."""

    messages: list = field(default_factory=list)
    system: str = None
    model: str = None
    replies: list = field(default_factory=list, repr=False)  # the StoryResult of each reply, with its recipe
    kind: str = field(default="chat", init=False)

    def add(self, role, content):
        self.messages.append({"role": role, "content": content})

    def to_dict(self):
        return {"system": self.system, "model": self.model, "messages": [dict(m) for m in self.messages]}

    def save(self, path):
        import json

        with open(path, "w", encoding="utf-8") as out:
            json.dump(self.to_dict(), out, ensure_ascii=False, indent=1)
        return path

    @classmethod
    def load(cls, path):
        import json

        from .errors import CreativeError

        try:
            with open(path, encoding="utf-8") as source:
                data = json.load(source)
        except (OSError, ValueError) as err:
            raise CreativeError(f"cannot read a chat from {path!r}: {err}") from None
        messages = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(messages, list) or not all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in messages):
            raise CreativeError(f"{path!r} is not a saved chat: it needs a 'messages' list of {{'role', 'content'}}")
        return cls(messages=[{"role": m["role"], "content": m["content"]} for m in messages], system=data.get("system"), model=data.get("model"))

    def markdown(self):
        lines = [f"*system:* {escape_markdown(self.system)}"] if self.system else []
        for message in self.messages:
            who = "**you:**" if message["role"] == "user" else f"**{escape_markdown(self.model or message['role'])}:**"
            lines.append(f"{who} {hard_breaks(escape_markdown(message['content']))}")
        return "\n\n".join(lines) or "*(an empty chat)*"

    def _repr_markdown_(self):
        return self.markdown()

    def _repr_pretty_(self, printer, cycle):
        printer.text(repr(self))

    def __repr__(self):
        return f"<Chat {self.model} {len(self.messages)} messages>"


# Characters that start something in inline Markdown: emphasis, code, links and images, HTML and entities,
# GFM's strikethrough and JupyterLab's math. CommonMark makes any ASCII punctuation literal after a backslash.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<&$~])")
# Between a closing `**` that follows punctuation and a letter, CommonMark would not close the bold (the
# delimiter is not "right-flanking"), and a `*` right after it would make one longer run; an entity there
# (`&` is punctuation) keeps the two apart and shows as nothing (U+2060, the word joiner).
_WORD_JOINER = "&#8288;"


def escape_markdown(text):
    """`text` shown literally in Markdown: every character that could mean something gets a backslash."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _is_punctuation(char):
    import unicodedata

    return bool(char) and unicodedata.category(char)[0] in "PS"


def bold_lines(text, after=""):
    """Markdown bold for a prompt, line by line (bold does not span paragraphs), escaped so that it shows as
    typed. `after` is what follows in the same line (the continuation): the bold still closes before it,
    whatever it starts with."""
    lines = [line.strip() for line in text.splitlines()]
    out = []
    for index, line in enumerate(lines):
        if not line:
            out.append("")
            continue
        bold = f"**{escape_markdown(line)}**"
        follows = after[:1] if index == len(lines) - 1 else ""
        closes = not (_is_punctuation(line[-1]) and follows and not follows.isspace() and not _is_punctuation(follows))
        if not closes or follows == "*":  # a `*` after it would join the closing `**` into one longer run
            bold += _WORD_JOINER
        out.append(bold)
    return "  \n".join(out)


def hard_breaks(text):
    """Keep the line breaks of poems in Markdown (a lone newline would render as a space)."""
    return "\n".join(line + "  " if line.strip() else line for line in text.split("\n")[:-1]) + (
        "\n" + text.split("\n")[-1] if "\n" in text else text
    )


def story_markdown(shown_prompt, texts, seed=None, interrupted=False):
    """The Markdown shown for a story: the prompt in bold (base models), then each sample, labelled when several."""
    parts = []
    for index, text in enumerate(texts):
        body = hard_breaks(text)
        if shown_prompt:
            joint = ""
            if shown_prompt.endswith("\n"):
                joint = "  \n"
            elif shown_prompt[-1].isspace() and not text[:1].isspace():
                joint = " "
            body = bold_lines(shown_prompt, after=joint + body) + joint + body
        if len(texts) > 1:
            body = f"**Sample {index + 1}**\n\n{body}"
        parts.append(body)
    out = "\n\n---\n\n".join(parts)
    if interrupted:
        out += "\n\n*(stopped)*"
    return out


def escape_html(text):
    return html.escape(text, quote=True)


# -- %%paint ---------------------------------------------------------------------------------


@dataclass(eq=False)
class ImageResult:
    """Pictures made by %%paint and %%stylize. `.image` is the first, `.images` all of them (PIL, each carrying its
    recipe as A1111 `parameters`), `.seeds` the seed of each, `.recipes` the recipe of each (a sweep's cells:
    each makes its picture alone), `.paths` the files --save wrote."""

    images: list
    recipe: dict
    seeds: list = field(default_factory=list)
    prompt: str = ""
    interrupted: bool = False
    steps_done: int = 0
    steps_total: int = 0
    notes: list = field(default_factory=list)
    paths: list = field(default_factory=list)
    losses: list = field(default_factory=list)  # %%stylize: the loss terms of each iteration
    sheet: object = None  # %%paint --sweep: the labelled grid of the cells, shown instead of a plain grid
    cells: list = None  # %%paint --sweep: the recipe of each cell painted, in grid order
    kind: str = field(default="image", init=False)

    @property
    def image(self):
        return self.images[0] if self.images else None

    @property
    def recipes(self):
        """One recipe per image: a sweep's cells, or each image of a batch (its seed, its place in the batch)."""
        if self.cells is not None:
            return list(self.cells)
        if len(self.images) <= 1 or self.recipe.get("task") != "paint":
            return [self.recipe] * len(self.images)
        return [
            {**self.recipe, "seed": seed, "params": {**self.recipe.get("params", {}), "batch_pos": index}}
            for index, seed in enumerate(self.seeds)
        ]

    def grid(self):
        """All the images in one compact grid (PIL; a sweep's labelled grid), or None when there are none."""
        from .media import grid

        return self.sheet if self.sheet is not None else grid(self.images)

    def save(self, folder):
        """Write the images as PNGs with their recipes into `folder`; returns the paths."""
        from .media import save_images

        self.paths = save_images(self.images, folder, self.seeds)
        return self.paths

    def _repr_png_(self):
        from .recipes import png_bytes

        sheet = self.grid()
        return png_bytes(sheet) if sheet is not None else None

    def _repr_pretty_(self, printer, cycle):
        printer.text(repr(self))

    def __repr__(self):
        params = self.recipe.get("params", {})
        count = len(self.images)
        what = f"{count} image{'s' if count != 1 else ''}"
        if len(self.seeds) > 1:
            what += f", seeds {self.seeds[0]}-{self.seeds[-1]}" if self.seeds == list(range(self.seeds[0], self.seeds[0] + len(self.seeds))) else f", seeds {self.seeds}"
        seed = self.seeds[0] if self.seeds else self.recipe.get("seed")
        head = f"<ImageResult {self.recipe.get('model')}" + (f" seed={seed}" if seed is not None else "")  # feed-forward styles draw none
        size = f" {params.get('width')}x{params.get('height')}" if params.get("width") else ""
        if self.recipe.get("method") in ("adain", "cyclegan") and self.image is not None:
            size = f" {self.recipe['method']} {self.image.width}x{self.image.height}"
        how = ""
        if self.recipe.get("task") == "paint":
            how = " inpainting" if "mask" in params else " image-to-image" if "init" in params else ""
            how += " + ControlNet" if "controlnet" in params else ""
            how += f" + hires x{params['hires']:g}" if params.get("hires") else ""
        if self.cells is not None:
            sweep = self.recipe.get("params", {}).get("sweep") or []
            what = f"sweep {' x '.join(s.split('=')[0] for s in sweep)}, {count} of {self.recipe.get('cells', count)} cells"
            return f"{head}{size}{how}, {what}{' (stopped)' if self.interrupted else ''}>"
        stopped = ""
        if self.interrupted:
            stopped = f" (stopped at step {self.steps_done}/{self.steps_total}: {'previews' if count else 'nothing to show'})"
        return f"{head}{size}{how}, {what}{stopped}>"


# -- %%finetune ------------------------------------------------------------------------------


@dataclass(eq=False)
class FinetuneResult:
    """A model adapted by %%finetune: where it was saved, the loss of each step, and held-out
    perplexity before and after. While training, partial results (done=False) report progress."""

    name: str
    base: str
    method: str  # "lora" | "full"
    recipe: dict
    path: str = None
    losses: list = field(default_factory=list)
    steps: int = 0
    max_steps: int = 0
    epoch: float = 0.0
    loss_before: float = None
    loss_after: float = None
    perplexity_before: float = None
    perplexity_after: float = None
    tokens: int = 0
    train_blocks: int = 0
    held_out_blocks: int = 0
    block_size: int = 0
    trained_tokens: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    done: bool = True
    kind: str = field(default="finetune", init=False)

    @property
    def tokens_per_s(self):
        return self.trained_tokens / self.elapsed_s if self.elapsed_s else 0.0

    def summary_lines(self):
        params = self.recipe.get("params", {})
        how = f"LoRA (r={params.get('lora_r')}, alpha={params.get('lora_alpha')})" if self.method == "lora" else "a full fine-tune"
        lines = [
            f"Fine-tuned {self.name!r} from {self.base} with {how}: {self.steps} steps, {self.epoch:.3g} epochs, "
            f"on {self.tokens:,} tokens ({self.train_blocks + self.held_out_blocks} blocks of {self.block_size}, "
            f"{self.held_out_blocks} held out)."
        ]
        if self.perplexity_before is not None:
            after = f"{self.perplexity_after:.1f}" if self.perplexity_after is not None else "not measured"
            lines.append(f"Held-out perplexity: {self.perplexity_before:.1f} before, {after} after.")
        if self.interrupted:
            lines.append(
                f"Stopped at step {self.steps} of {self.max_steps}; what was learned so far is saved."
                if self.path
                else "Stopped before the first step finished; nothing was saved."
            )
        if self.path:
            lines.append(f"Use it with %%story -m {self.name}  (folder: {self.path})")
        return lines

    def markdown(self):
        return "  \n".join(self.summary_lines())

    def _repr_markdown_(self):
        return self.markdown()

    def _repr_pretty_(self, printer, cycle):
        printer.text(repr(self))

    def __str__(self):
        return "\n".join(self.summary_lines())

    def __repr__(self):
        before, after = self.perplexity_before, self.perplexity_after
        ppl = f" perplexity {before:.1f} -> {after:.1f}" if before is not None and after is not None else ""
        stopped = " (stopped)" if self.interrupted else ""
        return f"<FinetuneResult {self.name!r} from {self.base} {self.method} {self.steps} steps{ppl}{stopped}>"


# -- %%compose -------------------------------------------------------------------------------


@dataclass(eq=False)
class AudioResult:
    """Music made by %%compose. `.audio` is the first piece (numpy float32, channels x samples),
    `.audios` all of them; `.sample_rate` in Hz. Shown as players with a waveform and spectrogram."""

    audios: list
    sample_rate: int
    recipe: dict
    prompt: str = ""
    interrupted: bool = False
    paths: list = field(default_factory=list)
    prompt_seconds: float = 0.0  # --continue: the seconds at the start that continue the given audio
    kind: str = field(default="audio", init=False)

    @property
    def audio(self):
        return self.audios[0] if self.audios else None

    @property
    def seconds(self):
        return self.audio.shape[-1] / self.sample_rate if self.audios else 0.0

    @property
    def channels(self):
        return self.audio.shape[0] if self.audios else 0

    def save(self, path, float32=False):
        """Write the piece as WAV (16-bit, or 32-bit float), the recipe inside; several pieces are
        numbered (song-1.wav, song-2.wav, ...). Returns the paths written."""
        from . import audio

        path = audio.check_wav_path(path)
        paths = audio.numbered_paths(path, len(self.audios))
        for index, (samples, target) in enumerate(zip(self.audios, paths)):
            recipe = dict(self.recipe, sample=index + 1) if len(self.audios) > 1 else self.recipe
            audio.write_wav(target, samples, self.sample_rate, recipe=recipe, float32=float32, title=self.prompt)
        self.paths = list(paths)
        return self.paths

    def picture(self, index=0):
        """PNG bytes of the waveform and spectrogram of piece `index` (drawn once)."""
        from . import audio

        cache = self.__dict__.setdefault("_pictures", {})
        if index not in cache:
            cache[index] = audio.picture_png(self.audios[index], self.sample_rate)
        return cache[index]

    def summary(self):
        layout = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels} channels")
        more = f", {len(self.audios)} pieces" if len(self.audios) > 1 else ""
        stopped = " (stopped)" if self.interrupted else ""
        return f"{self.seconds:.2f} s of {layout} audio at {self.sample_rate} Hz{more}{stopped}"

    def html(self):
        import base64

        from . import audio

        head = f"<p><b>{escape_html(self.prompt)}</b><br><small>{escape_html(self.recipe.get('model', ''))}, seed {self.recipe.get('seed')}: {escape_html(self.summary())}</small></p>"
        parts = [head]
        for index, samples in enumerate(self.audios):
            if len(self.audios) > 1:
                parts.append(f"<p><b>Piece {index + 1}</b></p>")
            parts.append(audio.player_html(samples, self.sample_rate))
            if samples.shape[-1]:
                png = base64.b64encode(self.picture(index)).decode("ascii")
                parts.append(f'<br><img src="data:image/png;base64,{png}" alt="waveform and spectrogram"/>')
        return "\n".join(parts)

    def _repr_html_(self):
        return self.html()

    def _repr_pretty_(self, printer, cycle):
        printer.text(repr(self))

    def __repr__(self):
        model, seed = self.recipe.get("model"), self.recipe.get("seed")
        head = self.prompt[:60].replace("\n", " ")
        return f"<AudioResult {model} seed={seed}: {self.summary()}, {head!r}{'...' if len(self.prompt) > 60 else ''}>"


# -- %%compose --midi --------------------------------------------------------------------------


@dataclass(eq=False)
class MidiResult:
    """Notes made by %%compose --midi, to open and edit in any DAW or notation program.

    `.notes` are the first piece's (start_s, end_s, pitch, velocity, program) tuples (program 128 = drums),
    `.pieces` every piece's; `.midi` is a standard MIDI file (bytes) with the recipe inside, `.midis` one
    per piece. `.audio` + `.sample_rate` are a listening preview, rendered when first asked for: FluidSynth
    with a General MIDI SoundFont where both are installed, else a simple built-in synth (`.preview_by`)."""

    pieces: list
    recipe: dict
    prompt: str = ""
    lengths: list = field(default_factory=list)  # seconds of each piece
    prompt_notes: int = 0  # how many notes at the start of each piece came from --prompt-midi
    prompt_end: float = 0.0  # where the prompt ended, in seconds
    interrupted: bool = False
    soundfont: str = ""  # %config CreativeMagics.soundfont, for the preview
    paths: list = field(default_factory=list)
    kind: str = field(default="midi", init=False)

    @property
    def notes(self):
        return self.pieces[0] if self.pieces else []

    @property
    def seconds(self):
        return self.lengths[0] if self.lengths else 0.0

    def recipe_of(self, index=0):
        """The recipe a piece's file carries: the call's, without where each value came from (so that
        running it again gives the very same bytes), numbered when there are several pieces."""
        recipe = {key: value for key, value in self.recipe.items() if key != "sources"}
        return dict(recipe, sample=index + 1) if len(self.pieces) > 1 else recipe

    @property
    def midis(self):
        from . import midi

        cache = self.__dict__.setdefault("_midis", {})
        for index, piece in enumerate(self.pieces):
            if index not in cache:
                cache[index] = midi.write_notes(piece, recipe=self.recipe_of(index), title=self.prompt or None)
        return [cache[index] for index in range(len(self.pieces))]

    @property
    def midi(self):
        return self.midis[0] if self.pieces else None

    # -- the preview
    @property
    def sample_rate(self):
        from .synth import SAMPLE_RATE

        return SAMPLE_RATE

    def _render(self):
        if "_audios" not in self.__dict__:
            from . import synth

            audios, how, note = [], "", None
            for piece, seconds in zip(self.pieces, self.lengths):
                samples, how, note = synth.render(piece, seconds, soundfont=self.soundfont)
                audios.append(samples)
            self.__dict__.update(_audios=audios, _preview_by=how, _preview_note=note)
        return self.__dict__["_audios"]

    @property
    def audios(self):
        return self._render()

    @property
    def audio(self):
        audios = self._render()
        return audios[0] if audios else None

    @property
    def preview_by(self):
        """What rendered the preview: 'FluidSynth with FluidR3_GM.sf2' or 'the built-in synth'."""
        self._render()
        return self.__dict__["_preview_by"]

    @property
    def preview_note(self):
        """One line when the preview comes from the built-in synth (how to get FluidSynth), else None."""
        self._render()
        return self.__dict__["_preview_note"]

    # -- files and pictures
    def save(self, path):
        """Write each piece as a MIDI file with its recipe inside (several: song-1.mid, song-2.mid, ...); returns the paths."""
        from . import audio, midi

        path = midi.check_midi_path(path)
        paths = audio.numbered_paths(path, len(self.pieces))
        for data, target in zip(self.midis, paths):
            midi.write_midi(target, data)
        self.paths = list(paths)
        return self.paths

    def picture(self, index=0):
        """PNG bytes of piece `index` as a piano roll (drawn once)."""
        from . import midi

        cache = self.__dict__.setdefault("_pictures", {})
        if index not in cache:
            cache[index] = midi.piano_roll_png(self.pieces[index], self.lengths[index], self.prompt_end if self.prompt_notes else None)
        return cache[index]

    def instruments(self, index=0):
        from .midi import instrument_name

        return [instrument_name(p) for p in dict.fromkeys(n.program for n in self.pieces[index])]

    def summary(self):
        names = self.instruments() if self.pieces else []
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        count = len(self.notes)
        more = f", {len(self.pieces)} pieces" if len(self.pieces) > 1 else ""
        prompt = f" ({self.prompt_notes} from the prompt)" if self.prompt_notes else ""
        stopped = " (stopped)" if self.interrupted else ""
        return f"{count} note{'s' if count != 1 else ''}{prompt} in {self.seconds:.2f} s{': ' + shown if shown else ''}{more}{stopped}"

    def html(self):
        import base64

        from . import audio

        head = f"<b>{escape_html(self.prompt)}</b><br>" if self.prompt else ""
        parts = [f"<p>{head}<small>{escape_html(self.recipe.get('model', ''))}, seed {self.recipe.get('seed')}: {escape_html(self.summary())}</small></p>"]
        stem = "-".join(("".join(c if c.isalnum() else " " for c in self.prompt.lower())).split()[:6]) or "piece"
        for index, piece in enumerate(self.pieces):
            if len(self.pieces) > 1:
                parts.append(f"<p><b>Piece {index + 1}</b></p>")
            png = base64.b64encode(self.picture(index)).decode("ascii")
            parts.append(f'<img src="data:image/png;base64,{png}" alt="piano roll"/><br>')
            parts.append(audio.player_html(self.audios[index], self.sample_rate))
            data = base64.b64encode(self.midis[index]).decode("ascii")
            name = f"{stem}-{index + 1}.mid" if len(self.pieces) > 1 else f"{stem}.mid"
            parts.append(f'<br><a download="{escape_html(name)}" href="data:audio/midi;base64,{data}">download {escape_html(name)}</a>')
        if self.preview_note:
            parts.append(f"<p><small><i>{escape_html(self.preview_note)}</i></small></p>")
        return "\n".join(parts)

    def _repr_html_(self):
        return self.html()

    def _repr_pretty_(self, printer, cycle):
        printer.text(repr(self))

    def __repr__(self):
        model, seed = self.recipe.get("model"), self.recipe.get("seed")
        head = self.prompt[:60].replace("\n", " ")
        said = f", {head!r}{'...' if len(self.prompt) > 60 else ''}" if self.prompt else ""
        return f"<MidiResult {model} seed={seed}: {self.summary()}{said}>"
