"""The slider panel: `%creative panel` / `creative_magics.panel()`.

Grouped controls for each task, with the ranges and defaults people know from the Stable Diffusion
and text-generation web UIs. A control the person has moved (or a recipe loaded from the gallery)
becomes the default of the next magic run: flag > panel > %config > model > house default, and
the recipe says "panel" for it. Controls nobody moved give nothing, so each model's own defaults
(SD-Turbo's single step, say) still hold while the panel is open.

"Run again" re-runs the last magic with the current values; "live" re-runs it when a slider is
released. Runs happen one at a time in a worker thread (`Rerunner`): requests close together
coalesce, and a request made while a run is in flight waits for it and then runs once, with the
values of that moment, so runs never overlap and never pile up.
"""

import contextlib
import importlib
import threading
import time
from dataclasses import dataclass

import ipywidgets as widgets

from ..errors import CreativeError
from ..seeds import MAX_SEED
from .common import prepare_frontend, routed_to

DEBOUNCE_S = 0.4
DEFAULT_MODEL = ""  # the dropdown's "default (...)" entry: a Dropdown shows a None value as blank
DESCRIPTION_WIDTH = "150px"
SLIDER_WIDTH = "460px"


@dataclass(frozen=True)
class Control:
    name: str  # the parameter name the task reads
    label: str
    kind: str  # "float" | "int" | "log"
    low: float
    high: float
    step: float
    fallback: float  # the shown start value when the task gives no house default


STORY = (
    Control("temperature", "temperature", "float", 0.0, 2.0, 0.01, 0.8),
    Control("top_p", "top-p", "float", 0.01, 1.0, 0.01, 0.95),
    Control("top_k", "top-k", "int", 0, 200, 1, 50),
    Control("min_p", "min-p", "float", 0.0, 1.0, 0.01, 0.0),
    Control("repetition_penalty", "repetition penalty", "float", 1.0, 2.0, 0.01, 1.1),
    Control("max_new_tokens", "max new tokens", "int", 1, 2048, 1, 200),
)
PAINT = (
    Control("steps", "sampling steps", "int", 1, 150, 1, 25),
    Control("guidance", "CFG scale", "float", 0.0, 30.0, 0.5, 7.5),
    Control("width", "width", "int", 64, 2048, 8, 512),
    Control("height", "height", "int", 64, 2048, 8, 512),
    Control("strength", "denoising strength", "float", 0.01, 1.0, 0.01, 0.75),
)
STYLIZE = (
    Control("style_weight", "style weight", "log", 0, 10, 0.1, 1e6),  # log: 10^0 .. 10^10
    Control("steps", "iterations", "int", 1, 1000, 1, 300),
)
COMPOSE = ()
CONTROLS = {"story": STORY, "paint": PAINT, "stylize": STYLIZE, "compose": COMPOSE}
TASKS = tuple(CONTROLS)
# Which seed box a task reads: %%paint and %%stylize share the image seed.
SEED_GROUP = {"story": "story", "paint": "image", "stylize": "image", "compose": "music"}
SEED_KIND = {"story": "text", "image": "image", "music": "audio"}


def house_default(task, control):
    """The value a task uses when nobody sets one (its HOUSE_DEFAULTS), else the web UIs' usual one."""
    try:
        module = importlib.import_module(f"creative_magics.tasks.{task}")
        value = getattr(module, "HOUSE_DEFAULTS", {}).get(control.name)
    except Exception:  # a task that does not import here: the panel still opens
        value = None
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else control.fallback


class Rerunner:
    """Runs `job()` in one worker thread, never two at once, never piling up.

    `request()` asks for a run `delay` seconds from now; requests in that window coalesce into one.
    A request made while a run is in flight waits for it, and all such requests become one run.
    The thread ends when there is nothing left to do.
    """

    def __init__(self, job, delay=DEBOUNCE_S, on_error=None):
        self.job = job
        self.delay = delay
        self.on_error = on_error
        self.runs = 0  # finished runs
        self.running = False
        self._pending = False
        self._due = 0.0
        self._thread = None
        self._cond = threading.Condition()

    def request(self, delay=None):
        with self._cond:
            self._pending = True
            self._due = time.monotonic() + (self.delay if delay is None else delay)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="creative-magics-rerun", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    @property
    def busy(self):
        with self._cond:
            return self._pending or self.running

    def wait(self, timeout=None):
        """Block until no run is due or in flight; False if `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending or self.running:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _work(self):
        while True:
            with self._cond:
                while True:
                    if not self._pending:
                        self._thread = None
                        self._cond.notify_all()
                        return
                    left = self._due - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                self._pending = False
                self.running = True
            try:
                self.job()
            except Exception as err:  # the thread must live on to serve the next request
                if self.on_error is not None:
                    self.on_error(err)
            finally:
                with self._cond:
                    self.running = False
                    self.runs += 1
                    self._cond.notify_all()


class Panel(widgets.VBox):
    """The slider panel. `values(task)` is what the magics read (through `session.panel_defaults`)."""

    def __init__(self, session, shell=None):
        prepare_frontend()
        self.session = session
        self.shell = shell
        self._quiet = 0
        self._closed = False
        self.touched = set()  # (task, name) the person set
        self.controls = {task: {} for task in TASKS}
        self.initial = {task: {} for task in TASKS}
        self.models = {}
        self.seeds = {}
        self.runner = Rerunner(self._run_last, on_error=self._run_failed)

        story_box = self._group("story")
        image_box = widgets.VBox(
            [
                widgets.HTML("<b>%%paint</b>"),
                self._group("paint", seed=False),
                widgets.HTML("<b>%%stylize</b>"),
                self._group("stylize", seed=False),
                self._seed_row("image"),
            ]
        )
        music_box = self._group("compose", seed_group="music")
        self.tabs = widgets.Tab(children=[story_box, image_box, music_box])
        for index, title in enumerate(("Story", "Image", "Music")):
            self.tabs.set_title(index, title)

        self.run_button = widgets.Button(description="Run again", button_style="primary")
        self.live = widgets.ToggleButton(value=False, description="live")
        self.reset_button = widgets.Button(description="Reset")
        self.run_button.on_click(lambda _: self.run_again())
        self.reset_button.on_click(lambda _: self.reset())
        self.live.observe(self._live_changed, names="value")
        self.status = widgets.HTML()
        self.run_status = widgets.HTML()
        self.output = widgets.Output()
        super().__init__(
            [
                self.tabs,
                widgets.HBox([self.run_button, self.live, self.reset_button]),
                self.status,
                self.run_status,
                self.output,
            ]
        )
        self.add_class("creative-magics-panel")
        self.status.add_class("creative-magics-panel-status")
        self.run_status.add_class("creative-magics-run-status")
        self.output.add_class("creative-magics-run-output")
        self._show_status()

    # -- building ------------------------------------------------------------------------------

    def _group(self, task, seed=True, seed_group=None):
        rows = [self._model_dropdown(task)]
        configured = self._configured(task)
        for control in CONTROLS[task]:
            start = configured.get(control.name, house_default(task, control))
            widget = _control_widget(control, start)
            widget.observe(lambda change, task=task, name=control.name: self._changed(task, name), names="value")
            self.controls[task][control.name] = widget
            self.initial[task][control.name] = widget.value
            rows.append(widget)
        if seed:
            rows.append(self._seed_row(seed_group or SEED_GROUP[task]))
        return widgets.VBox(rows)

    def _configured(self, task):
        settings = self.session.settings
        values = getattr(settings, f"{task}_defaults", None) or {}
        return {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    def _model_dropdown(self, task):
        dropdown = widgets.Dropdown(
            options=self._model_options(task, None),
            value=DEFAULT_MODEL,
            description="model",
            style={"description_width": DESCRIPTION_WIDTH},
            layout=widgets.Layout(width=SLIDER_WIDTH),
        )
        dropdown.observe(lambda change, task=task: self._changed(task, "model"), names="value")
        self.models[task] = dropdown
        return dropdown

    def _model_options(self, task, keep):
        """(label, value) pairs: the task's default, its aliases, your aliases, the warm models."""
        from ..models import BUILTIN_ALIASES, DEFAULT_MODELS, TASK_FAMILY

        family = TASK_FAMILY[task]
        warm = {row["name"] for row in self.session.cache.table() if TASK_FAMILY.get(row["task"]) == family}
        names = [name for name, alias in sorted(BUILTIN_ALIASES.items()) if alias.family == family]
        yours = sorted(self.session.settings.aliases)
        options = [(f"default ({DEFAULT_MODELS.get(task, '?')})", DEFAULT_MODEL)]
        seen = set()
        for name in names + yours + sorted(warm) + ([keep] if keep else []):
            if name in seen:
                continue
            seen.add(name)
            notes = [note for note, yes in (("yours", name in yours), ("warm", name in warm)) if yes]
            options.append((f"{name} ({', '.join(notes)})" if notes else name, name))
        return options

    def _seed_row(self, group):
        box = widgets.BoundedIntText(
            value=-1,
            min=-1,
            max=MAX_SEED,
            description="seed (-1 = random)",
            style={"description_width": DESCRIPTION_WIDTH},
            layout=widgets.Layout(width="330px"),
        )
        box.observe(lambda change, group=group: self._changed(group, "seed"), names="value")
        random_button = widgets.Button(description="random", layout=widgets.Layout(width="80px"))
        reuse_button = widgets.Button(description="reuse last", layout=widgets.Layout(width="90px"))
        random_button.on_click(lambda _, group=group: self.random_seed(group))
        reuse_button.on_click(lambda _, group=group: self.reuse_last_seed(group))
        self.seeds[group] = box
        return widgets.HBox([box, random_button, reuse_button])

    # -- what the magics read --------------------------------------------------------------------

    def values(self, task):
        """The values the person set for `task` ({} for controls nobody moved)."""
        out = {}
        for name, widget in self.controls.get(task, {}).items():
            if (task, name) in self.touched:
                out[name] = _clean(widget.value)
        dropdown = self.models.get(task)
        if dropdown is not None and dropdown.value:
            out["model"] = dropdown.value
        group = SEED_GROUP.get(task)
        if group in self.seeds and self.seeds[group].value >= 0:
            out["seed"] = int(self.seeds[group].value)
        return out

    def describe(self):
        """What the panel sets, as `name=value` per task (its repr and its status line)."""
        parts = []
        for task in TASKS:
            values = self.values(task)
            if values:
                parts.append(f"{task}: " + ", ".join(f"{k}={_short(v)}" for k, v in values.items()))
        return "; ".join(parts)

    def __repr__(self):
        said = self.describe()
        return f"<creative_magics panel: {said}>" if said else "<creative_magics panel: nothing set, the magics use their defaults>"

    # -- changing values ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _quietly(self):
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    def _changed(self, task, name):
        if self._quiet:
            return
        if name not in ("model", "seed"):
            self.touched.add((task, name))
        self._show_status()
        if self.live.value:
            self.runner.request()

    def set_values(self, task, **values):
        """Set controls from Python, as if moved by hand: `panel.set_values("story", temperature=1.1)`."""
        if task not in CONTROLS:
            raise CreativeError(f"the panel has no {task!r} controls; it has {', '.join(TASKS)}")
        for name, value in values.items():
            if name == "model":
                self._choose_model(task, value)
            elif name == "seed":
                self.seeds[SEED_GROUP[task]].value = -1 if value is None else int(value)
            elif name in self.controls[task]:
                widget = self.controls[task][name]
                _widen(widget, value)
                widget.value = value
                self.touched.add((task, name))
            else:
                raise CreativeError(f"the panel has no {name!r} control for {task}; it has {', '.join(self.controls[task])}")
        self._show_status()

    def _choose_model(self, task, name):
        dropdown = self.models[task]
        name = name or DEFAULT_MODEL
        if name not in [value for _, value in dropdown.options]:
            dropdown.options = self._model_options(task, name)
        dropdown.value = name

    def reset(self):
        """Every control back to its default; nothing set, so the magics use their own defaults again."""
        with self._quietly():
            for task, controls in self.controls.items():
                for name, widget in controls.items():
                    widget.value = self.initial[task][name]
            for dropdown in self.models.values():
                dropdown.value = DEFAULT_MODEL
            for box in self.seeds.values():
                box.value = -1
            self.touched.clear()
        self._show_status()

    def random_seed(self, group):
        self.seeds[group].value = -1

    def reuse_last_seed(self, group):
        result = self.session.last(SEED_KIND[group])
        seed = getattr(result, "recipe", {}).get("seed") if result is not None else None
        if seed is None:
            self._say(f"No {SEED_KIND[group]} result yet, so there is no seed to reuse.")
            return None
        self.seeds[group].value = int(seed)
        return int(seed)

    def load_recipe(self, recipe):
        """Put a recipe's values into the controls (the gallery's "load into panel"); returns their names."""
        task = recipe.get("task") if isinstance(recipe, dict) else None
        if task not in CONTROLS:
            raise CreativeError(f"the panel has no controls for {task or 'this'} recipe; it has {', '.join(TASKS)}")
        params = recipe.get("params") or {}
        loaded = []
        with self._quietly():
            for name, widget in self.controls[task].items():
                value = params.get(name)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    _widen(widget, value)
                    widget.value = value
                    self.touched.add((task, name))
                    loaded.append(name)
            if recipe.get("model"):
                self._choose_model(task, recipe["model"])
                loaded.append("model")
            if isinstance(recipe.get("seed"), int):
                self.seeds[SEED_GROUP[task]].value = recipe["seed"]
                loaded.append("seed")
        self.tabs.selected_index = {"story": 0, "paint": 1, "stylize": 1, "compose": 2}[task]
        self._show_status()
        if self.live.value:
            self.runner.request()
        return loaded

    def refresh_models(self):
        """Re-list each task's models (a model warmed since the panel opened joins its dropdown)."""
        with self._quietly():
            for task, dropdown in self.models.items():
                value = dropdown.value
                dropdown.options = self._model_options(task, value)
                dropdown.value = value

    # -- running again -----------------------------------------------------------------------------

    def run_again(self):
        """Re-run the last magic with the current values (in the background; one run at a time)."""
        if self.session.last_magic is None:
            self._say("Nothing to run again yet: run a %%story, %%paint, %%stylize or %%compose cell first.")
            return
        if self.runner.busy:
            self._say("A run is in flight; the new one follows it.")
        self.runner.request(delay=0)

    def wait(self, timeout=None):
        """Block until the requested runs are done (tests, scripts)."""
        return self.runner.wait(timeout)

    def _live_changed(self, change):
        self._show_status()

    def _run_last(self):
        last = self.session.last_magic
        if last is None:
            self._say("Nothing to run again yet: run a %%story, %%paint, %%stylize or %%compose cell first.")
            return
        name, line, cell = last
        shell = self.shell or _shell()
        magic = shell.find_cell_magic(name) if shell is not None else None
        if magic is None:
            self._say(f"%%{name} is not loaded here: run %load_ext creative_magics first.")
            return
        hint = _flags_that_win(line, self.values(name))
        self._say(f"Running %%{name} again{hint}…")
        started = time.monotonic()
        failed = None
        with routed_to(self.output) as sink:
            try:
                magic(line, cell)
            except Exception as err:  # a UsageError is one line, as in a cell
                failed = f"{type(err).__name__}: {err}"
                sink.stream("stderr", failed + "\n")
        took = time.monotonic() - started
        self._say(f"%%{name} failed: {failed}" if failed else f"Ran %%{name} again in {took:.1f} s{hint}.")
        self.refresh_models()

    def _run_failed(self, err):
        self._say(f"The run failed: {type(err).__name__}: {err}")

    def _say(self, text):
        from html import escape

        self.run_status.value = f"<span>{escape(text)}</span>"

    def _show_status(self):
        from html import escape

        said = self.describe()
        head = "Live: a released slider runs the last magic again. " if self.live.value else ""
        body = (
            f"The panel sets {escape(said)} (a flag on the magic line still wins)."
            if said
            else "Nothing set: move a control to make it the default of the next run."
        )
        self.status.value = f"<small>{escape(head)}{body}</small>"

    def close(self):
        self._closed = True
        if self.session.panel is self:
            self.session.panel = None
        super().close()

    @property
    def closed(self):
        return self._closed


def _control_widget(control, value):
    common = dict(
        description=control.label,
        continuous_update=False,  # values arrive when the slider is released
        style={"description_width": DESCRIPTION_WIDTH},
        layout=widgets.Layout(width=SLIDER_WIDTH),
    )
    if control.kind == "int":
        return widgets.IntSlider(value=int(value), min=int(control.low), max=int(control.high), step=int(control.step), **common)
    if control.kind == "log":
        return widgets.FloatLogSlider(value=float(value), base=10, min=control.low, max=control.high, step=control.step, readout_format=".1e", **common)
    return widgets.FloatSlider(value=float(value), min=control.low, max=control.high, step=control.step, readout_format=".2f", **common)


def _widen(widget, value):
    """A recipe's value beyond a slider's range widens the range instead of being clipped."""
    if isinstance(widget, widgets.FloatLogSlider):
        import math

        if value > 0:
            exponent = math.log10(value)
            widget.max = max(widget.max, math.ceil(exponent))
            widget.min = min(widget.min, math.floor(exponent))
        return
    if value > widget.max:
        widget.max = value
    if value < widget.min:
        widget.min = value


def _clean(value):
    if isinstance(value, float):
        return float(f"{value:.6g}")  # what the slider means, not its float noise
    return value


def _short(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def _flags_that_win(line, values):
    """' (--temperature on the magic line wins over the panel)' when the line sets what the panel does."""
    import shlex

    try:
        words = set(shlex.split(line or ""))
    except ValueError:
        return ""
    flags = {name: "--" + name.replace("_", "-") for name in values}
    flags.update(model=("-m", "--model"))
    winning = [name for name in values if any(flag in words for flag in _as_tuple(flags.get(name)))]
    if not winning:
        return ""
    return " (" + ", ".join("--" + name.replace("_", "-") for name in winning) + " on the magic line wins over the panel)"


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def open_panel():
    """The panel of this session: made on first use, the same one after (its model lists refreshed)."""
    from ..session import current

    session = current()
    panel = session.panel
    if panel is None or panel.closed:
        panel = Panel(session, shell=_shell())
        session.panel = panel
    else:
        panel.refresh_models()
    return panel
