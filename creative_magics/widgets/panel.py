"""The slider panel: `%creative panel` / `creative_magics.panel()`.

One control per declared parameter that has a `panel` slider (params.py), grouped by task, with the
ranges people know from the Stable Diffusion and text-generation web UIs. A control the person has
moved (or a recipe loaded from the gallery) becomes the default of the next run: flag > panel >
%config > model > house default, and the recipe says "panel" for it. Controls nobody moved give
nothing; they show what the next run would use with the model chosen in the tab's dropdown, or the
model the task used last (SD-Turbo: 1 step, guidance 0, 512 px; SD 1.5: 25 steps, 7.5).

"Run again" makes the last call again through the Python API, with the panel's values (a slider moved
after that call wins over the call's own flags), and shows the result in the panel's output through
the same view the cell used. "live" does it when a slider is released. Runs happen one at a time in a
worker thread (`Rerunner`): requests close together coalesce, and a request made while a run is in
flight waits for it and then runs once, with the values of that moment.
"""

import contextlib
import math
import threading
import time

import ipywidgets as widgets

from .. import api
from .. import params as declared
from ..errors import CreativeError
from ..seeds import MAX_SEED
from ..session import current, stamp
from ..views import OutputSurface, view_for
from .common import prepare_frontend

DEBOUNCE_S = 0.4
DEFAULT_MODEL = ""  # the dropdown's "default (...)" entry: a Dropdown shows a None value as blank
DESCRIPTION_WIDTH = "150px"
SLIDER_WIDTH = "460px"
TASKS = ("story", "paint", "stylize", "compose")
# The tabs, and the tasks each holds.
TABS = (("Story", ("story",)), ("Image", ("paint", "stylize")), ("Music", ("compose",)))
TAB_OF = {task: index for index, (_, tasks) in enumerate(TABS) for task in tasks}
# Which seed box a task reads: %%paint and %stylize share the image seed.
SEED_GROUP = {"story": "story", "paint": "image", "stylize": "image", "compose": "music"}
SEED_KIND = {"story": "text", "image": "image", "music": "audio"}


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
    """The slider panel. `values(task)` is what the next call of `task` takes from it."""

    def __init__(self, session):
        prepare_frontend()
        self.session = session
        self._quiet = 0
        self._closed = False
        self.touched = set()  # (task, name) the person set
        self.moved = {}  # (task, name) -> stamp of the last move, to tell moves after a call from moves before
        self.controls = {task: {} for task in TASKS}
        self.models = {}
        self.seeds = {}
        self.runner = Rerunner(self._run_last, on_error=self._run_failed)

        groups = {task: self._group(task, seed=task not in ("paint", "stylize")) for task in TASKS}
        image_box = widgets.VBox(
            [widgets.HTML("<b>%%paint</b>"), groups["paint"], self._sweep_row(), widgets.HTML("<b>%stylize</b>"), groups["stylize"],
             self._seed_row("image")]
        )
        self.tabs = widgets.Tab(children=[groups["story"], image_box, groups["compose"]])
        for index, (title, _) in enumerate(TABS):
            self.tabs.set_title(index, title)

        self.run_button = widgets.Button(description="Run again", button_style="primary")
        self.live = widgets.ToggleButton(value=False, description="live")
        self.reset_button = widgets.Button(description="Reset")
        self.run_button.on_click(lambda _: self.run_again())
        self.reset_button.on_click(lambda _: self.reset())
        self.live.observe(lambda change: self._show_status(), names="value")
        line = widgets.Layout(width="100%", margin="0 0 0 4px")
        self.status = widgets.HTML(layout=line)
        self.run_status = widgets.HTML(layout=line)
        self.output = widgets.Output()
        super().__init__(
            [self.tabs, widgets.HBox([self.run_button, self.live, self.reset_button]), self.status, self.run_status, self.output]
        )
        self.add_class("creative-magics-panel")
        self.status.add_class("creative-magics-panel-status")
        self.run_status.add_class("creative-magics-run-status")
        self.output.add_class("creative-magics-run-output")
        self.follow_models()
        self._open_on_last_task()
        self._show_status()
        session.add_defaults("panel", self.values)
        session.add_listener(self._new_result)

    # -- building ------------------------------------------------------------------------------

    def _group(self, task, seed=True):
        rows = [self._model_dropdown(task)]
        for param in declared.of(task).panel_params():
            widget = _control_widget(param)
            widget.observe(lambda change, task=task, name=param.name: self._changed(task, name), names="value")
            self.controls[task][param.name] = widget
            rows.append(widget)
        if seed:
            rows.append(self._seed_row(SEED_GROUP[task]))
        return widgets.VBox(rows)

    def _model_dropdown(self, task):
        dropdown = widgets.Dropdown(
            options=self._model_options(task, None),
            value=DEFAULT_MODEL,
            description="model",
            style={"description_width": DESCRIPTION_WIDTH},
            layout=widgets.Layout(width=SLIDER_WIDTH),
        )
        dropdown.observe(lambda change, task=task: self._model_changed(task), names="value")
        self.models[task] = dropdown
        return dropdown

    def _model_options(self, task, keep):
        """(label, value) pairs: the task's default, its aliases, your aliases, the warm models, the remote
        models (ENDPOINT:MODEL) this session used."""
        from ..models import BUILTIN_ALIASES, DEFAULT_MODELS, TASK_FAMILY

        family = TASK_FAMILY[task]
        warm = {row["name"] for row in self.session.cache.table() if TASK_FAMILY.get(row["task"]) == family}
        remote = sorted({f"{row['endpoint']}:{row['model']}" for row in self.session.remote_table() if row["task"] == task})
        names = [name for name, alias in sorted(BUILTIN_ALIASES.items()) if alias.family == family]
        yours = sorted(self.session.settings.aliases)
        options = [(f"default ({DEFAULT_MODELS.get(task, '?')})", DEFAULT_MODEL)]
        seen = set()
        for name in names + yours + sorted(warm) + remote + ([keep] if keep else []):
            if name in seen:
                continue
            seen.add(name)
            notes = [note for note, yes in (("yours", name in yours), ("warm", name in warm), ("remote", name in remote)) if yes]
            options.append((f"{name} ({', '.join(notes)})" if notes else name, name))
        return options

    def _sweep_row(self):
        """%%paint: paint the last picture again once per value of one slider, as one labelled grid."""
        names = [(widget.description, name) for name, widget in self.controls["paint"].items() if declared.PAINT[name].axis]
        self.sweep_name = widgets.Dropdown(
            options=names, description="sweep", style={"description_width": DESCRIPTION_WIDTH}, layout=widgets.Layout(width="330px")
        )
        self.sweep_values = widgets.Text(placeholder="values, e.g. 3, 5, 7.5", layout=widgets.Layout(width="200px"))
        self.sweep_button = widgets.Button(description="Sweep", layout=widgets.Layout(width="80px"))
        self.sweep_name.observe(lambda change: self._suggest_sweep(force=True), names="value")
        for widget in self.controls["paint"].values():  # the suggestion follows its slider, until edited
            widget.observe(lambda change: self._suggest_sweep(), names="value")
        self.sweep_button.on_click(lambda _: self.sweep(self.sweep_name.value, self.sweep_values.value))
        self._sweep = None  # the sweep the next run makes (NAME=V1,V2,...)
        self._suggested = None
        self._suggest_sweep(force=True)
        return widgets.HBox([self.sweep_name, self.sweep_values, self.sweep_button])

    def _suggest_sweep(self, force=False):
        """Three values from the slider's, within its range (not over values typed in): half, itself and half again
        for a number; itself, half again and twice for a whole number (steps, pixels), since fewer steps can leave an
        image-to-image call no denoising step at all."""
        name = self.sweep_name.value
        widget = self.controls["paint"].get(name)
        if widget is None or not (force or self.sweep_values.value in ("", self._suggested)):
            return
        value, step = widget.value, widget.step or 1
        picked = []
        for factor in (1.0, 1.5, 2.0) if isinstance(widget, widgets.IntSlider) else (0.5, 1.0, 1.5):
            near = min(widget.max, max(widget.min, round(value * factor / step) * step))
            near = int(near) if isinstance(widget, widgets.IntSlider) else float(f"{near:.6g}")
            if near not in picked:
                picked.append(near)
        self.sweep_values.value = self._suggested = ", ".join(_short(v) for v in picked)

    def sweep(self, name, values):
        """Paint the last %%paint call again once per value of the slider `name` ("3, 5, 7"), as one labelled grid
        (in the background, like "Run again"; the last %%paint, even when another task ran since). Returns the
        sweep it asked for, or None when it cannot."""
        from .. import sweeps

        if self.session.last_call("paint") is None:
            self._say("Nothing to sweep yet: run a %%paint cell first.")
            return None
        item = f"{name}={','.join(v.strip() for v in str(values).split(',') if v.strip())}"
        try:
            made = sweeps.axes(declared.PAINT, [item])
            sweeps.check_size(made, yes=False)
        except CreativeError as err:
            self._say(str(err))
            return None
        self._sweep = made[0].written
        self._say(f"Sweeping {self._sweep}…")
        self.runner.request(delay=0)
        return self._sweep

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

    # -- what the calls read -------------------------------------------------------------------------

    def values(self, task):
        """The values the person set for `task` ({} for controls nobody moved)."""
        if self._closed:
            return {}
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

    def moved_since(self, task, number):
        """The values of `task` the person set after the call numbered `number`."""
        keys = {"model": (task, "model"), "seed": (SEED_GROUP.get(task), "seed")}
        return {
            name: value for name, value in self.values(task).items() if self.moved.get(keys.get(name, (task, name)), 0) > number
        }

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
        if name != "seed":
            self.touched.add((task, name))
        self.moved[(task, name)] = stamp()
        self._show_status()
        if self.live.value:
            self.runner.request()

    def _model_changed(self, task):
        if self._quiet:
            return
        self.moved[(task, "model")] = stamp()
        self.follow_models(task)
        self._show_status()
        if self.live.value:
            self.runner.request()

    def set_values(self, task, **values):
        """Set controls from Python, as if moved by hand: `panel.set_values("story", temperature=1.1)`."""
        if task not in self.controls:
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

    def followed_model(self, task):
        """The model the controls of `task` follow: the dropdown's, else the one the task used last."""
        chosen = self.models[task].value
        if chosen:
            return chosen
        call = self.session.last_call(task)
        if call is not None:
            return call.given.get("model") or self._model_of_last(task)
        return None

    def _model_of_last(self, task):
        for result in reversed(list(self.session.results)):
            recipe = getattr(result, "recipe", None) or {}
            if recipe.get("task") == task and recipe.get("model"):
                return recipe["model"]
        return None

    def follow_models(self, *tasks):
        """Show, on every control nobody moved, what the next run would use with the followed model."""
        with self._quietly():
            for task in tasks or TASKS:
                try:
                    shown = api.model_defaults(task, self.followed_model(task))
                except CreativeError:
                    shown = api.model_defaults(task)
                for name, widget in self.controls[task].items():
                    value = shown.get(name)
                    if (task, name) in self.touched or not isinstance(value, (int, float)) or isinstance(value, bool):
                        continue
                    _widen(widget, value)
                    widget.value = value

    def reset(self):
        """Every control back to what the next run would use; nothing set, so the calls use their own defaults again."""
        with self._quietly():
            for dropdown in self.models.values():
                dropdown.value = DEFAULT_MODEL
            for box in self.seeds.values():
                box.value = -1
            self.touched.clear()
            self.moved.clear()
        self.follow_models()
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
        if task not in self.controls:
            raise CreativeError(f"the panel has no controls for {task or 'this'} recipe; it has {', '.join(TASKS)}")
        params = recipe.get("params") or {}
        loaded = []
        now = stamp()
        with self._quietly():
            for name, widget in self.controls[task].items():
                value = params.get(name)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    _widen(widget, value)
                    widget.value = value
                    self.touched.add((task, name))
                    self.moved[(task, name)] = now
                    loaded.append(name)
            if recipe.get("model"):
                self._choose_model(task, recipe["model"])
                self.moved[(task, "model")] = now
                loaded.append("model")
            if isinstance(recipe.get("seed"), int):
                self.seeds[SEED_GROUP[task]].value = recipe["seed"]
                self.moved[(SEED_GROUP[task], "seed")] = now
                loaded.append("seed")
        self.follow_models(task)
        self.tabs.selected_index = TAB_OF[task]
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

    def _open_on_last_task(self):
        task = self.session.last_task
        if task in TAB_OF:
            self.tabs.selected_index = TAB_OF[task]

    def _new_result(self, result):
        """After each run: the model lists, the followed models and the tab follow it."""
        if self._closed:
            return
        self.refresh_models()
        self.follow_models()
        self._open_on_last_task()

    # -- running again -----------------------------------------------------------------------------

    def _last_call(self):
        task = self.session.last_task
        return self.session.last_call(task) if task in TAB_OF else None

    def run_again(self):
        """Make the last call again with the current values (in the background; one run at a time)."""
        if self._last_call() is None:
            self._say("Nothing to run again yet: run a %%story, %%paint, %stylize or %%compose cell first.")
            return
        if self.runner.busy:
            self._say("A run is in flight; the new one follows it.")
        self.runner.request(delay=0)

    def wait(self, timeout=None):
        """Block until the requested runs are done (tests, scripts)."""
        return self.runner.wait(timeout)

    def _run_last(self):
        call = self.session.last_call("paint") if self._sweep else self._last_call()
        if call is None:
            self._say("Nothing to run again yet: run a %%story, %%paint, %stylize or %%compose cell first.")
            return
        task = call.task
        above = self.moved_since(task, call.number)
        sweep, self._sweep = self._sweep, None
        if sweep and task == "paint":
            above = {**above, "sweep": [sweep]}  # the sweep wins over the call's own values of that slider
        hint = _flags_that_win(call, self.values(task), above)
        self._say(f"Running {_magic(task)} again{hint}…")
        surface = OutputSurface(self.output)
        view = view_for(task, surface)
        started = time.monotonic()
        failed = None
        try:
            result = api.run_again(call, [("panel", above)] if above else None, **view.callbacks())
        except CreativeError as err:  # one line, as in a cell
            view.close()
            failed = f"UsageError: {err}"
            surface.say(failed, "stderr")
        except KeyboardInterrupt:
            view.close()
            failed = "interrupted"
        else:
            view.finish(result)
            if call.output and call.namespace is not None:  # as the cell's -o did
                call.namespace[call.output] = result
        took = time.monotonic() - started
        self._say(f"{_magic(task)} failed: {failed}" if failed else f"Ran {_magic(task)} again in {took:.1f} s{hint}.")

    def _run_failed(self, err):
        self._say(f"The run failed: {type(err).__name__}: {err}")

    def _say(self, text):
        from html import escape

        self.run_status.value = f"<span>{escape(text)}</span>"

    def _show_status(self):
        from html import escape

        said = self.describe()
        head = "Live: a released slider runs the last call again. " if self.live.value else ""
        body = (
            f"The panel sets {escape(said)} (a flag on the magic line still wins, unless you move the slider after the run)."
            if said
            else "Nothing set: move a control to make it the default of the next run."
        )
        self.status.value = f'<small style="line-height:1.4">{escape(head)}{body}</small>'

    def close(self):
        self._closed = True
        self.session.remove_defaults("panel", self.values)
        self.session.remove_listener(self._new_result)
        super().close()

    @property
    def closed(self):
        return self._closed


def _magic(task):
    return "%stylize" if task == "stylize" else f"%%{task}"


def _control_widget(param):
    slider = param.panel
    common = dict(
        description=slider.label or param.name,
        continuous_update=False,  # values arrive when the slider is released
        style={"description_width": DESCRIPTION_WIDTH},
        layout=widgets.Layout(width=SLIDER_WIDTH),
    )
    start = param.default if param.default is not None else slider.low
    if param.kind == "int":
        return widgets.IntSlider(value=int(start), min=int(slider.low), max=int(slider.high), step=int(slider.step), **common)
    if slider.log:
        return widgets.FloatLogSlider(value=float(start), base=10, min=slider.low, max=slider.high, step=slider.step, readout_format=".1e", **common)
    return widgets.FloatSlider(value=float(start), min=slider.low, max=slider.high, step=slider.step, readout_format=".2f", **common)


def _widen(widget, value):
    """A recipe's value beyond a slider's range widens the range instead of being clipped."""
    if isinstance(widget, widgets.FloatLogSlider):
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


def _flags_that_win(call, values, above):
    """' (--temperature on the magic line wins over the panel)' when the call set what the panel does
    before that call; what was moved after it wins instead, and is said too."""
    task = declared.of(call.task)
    flag = lambda name: task[name].flag if name in task else "--" + name.replace("_", "-")
    winning = [name for name in values if name in call.given and name not in above]
    replaced = [name for name in above if name in call.given]
    said = []
    if winning:
        said.append(", ".join(flag(name) for name in winning) + " on the magic line wins over the panel")
    if replaced:
        said.append("the panel's " + ", ".join(name for name in replaced) + " replaces the magic line's")
    return f" ({'; '.join(said)})" if said else ""


_opened = None


def open_panel():
    """The panel of this session: made on first use, the same one after (its model lists refreshed)."""
    global _opened
    session = current()
    if _opened is None or _opened.closed or _opened.session is not session:
        _opened = Panel(session)
    else:
        _opened.refresh_models()
        _opened.follow_models()
        _opened._open_on_last_task()
    return _opened
