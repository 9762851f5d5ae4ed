"""How results appear in a notebook (rich, updated in place) or a terminal (plain text)."""

import sys


def rich_frontend():
    """True in a Jupyter kernel, where displays can be updated in place; False in a terminal."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


_EMPTY = {"text/plain": "", "text/markdown": ""}


def _bundle(result):
    # A raw bundle: IPython's Markdown() would read a text that names a file ("." say) from disk.
    return {"text/markdown": result.markdown(), "text/plain": as_text(result)}


class StoryView:
    """Shows a story as it is written, then the finished Markdown.

    In a notebook the live text goes to a display updated in place; when done, that display is
    emptied and the finished story shown as a new output. Tools that ignore display updates (nbval)
    thus see an empty placeholder and the final story, never a partial text that depends on timing.
    Nothing is displayed before the first text arrives, so a bad flag leaves no empty output.
    """

    def __init__(self):
        self.rich = rich_frontend()
        self.handle = None
        self.printed = None

    def update(self, result):
        if self.rich:
            from IPython.display import display

            if self.handle is None:
                self.handle = display(_EMPTY, raw=True, display_id=True)
            self.handle.update(_bundle(result), raw=True)
        elif len(result.texts) == 1:  # terminal: print what is new; several samples print when complete
            if self.printed is None:
                sys.stdout.write(result.shown_prompt)
                self.printed = ""
            text = result.texts[0]
            sys.stdout.write(text[len(self.printed) :] if text.startswith(self.printed) else "\n" + text)
            sys.stdout.flush()
            self.printed = text

    def finish(self, result):
        if self.rich:
            from IPython.display import display

            if self.handle is not None:
                self.handle.update(_EMPTY, raw=True)
            display(_bundle(result), raw=True)
        elif len(result.texts) == 1:
            self.update(result)
            sys.stdout.write("\n(stopped)\n" if result.interrupted else "\n")
        else:
            print(as_text(result))


def as_text(result):
    parts = []
    for index, text in enumerate(result.texts):
        head = f"--- sample {index + 1} ---\n" if len(result.texts) > 1 else ""
        parts.append(head + result.shown_prompt + text)
    return "\n".join(parts) + ("\n(stopped)" if result.interrupted else "")


# -- %%paint ---------------------------------------------------------------------------------

PAINT_UPDATE_INTERVAL_S = 0.1
PAINT_TERMINAL_BAR_DELAY_S = 0.5
_EMPTY_LIVE = {"text/plain": "", "text/html": ""}


def image_bundle(result):
    """The final display of an ImageResult: the grid as PNG (never compared by nbval) and a stable text."""
    import base64

    bundle = {"text/plain": repr(result)}
    png = result._repr_png_()
    if png is not None:
        bundle["image/png"] = base64.b64encode(png).decode("ascii")
    return bundle


class ImageView:
    """Shows a painting as it is made: a tqdm progress line with the steps and, every few steps, a
    preview of the latents; then the finished grid.

    In a notebook both live in one display updated in place; when done it is emptied and the grid
    shown as a new output, so nbval (which ignores display updates) compares only the final text
    (see StoryView). In a terminal: a tqdm bar on stderr, then the result's one-line text.
    Nothing is shown before the first step, so a bad flag leaves no empty output.
    """

    def __init__(self, label="paint"):
        import time

        self.label = label
        self.postfix = None
        self.rich = rich_frontend()
        self.handle = None
        self.bar = None
        self.started = time.monotonic()
        self.last_step = 0
        self.preview_html = ""
        self.last_update = 0.0

    @property
    def wants_previews(self):
        return self.rich

    def step(self, step, total, loss=None):
        import time

        now = time.monotonic()
        if loss is not None:  # %%stylize reports its loss
            self.postfix = f"loss={loss:.3g}"
        if step < self.last_step:  # a retry (after freeing GPU memory) starts again
            self.started = now
            self._close_bar()
        self.last_step = step
        if not self.rich:
            if self.bar is None:
                if now - self.started < PAINT_TERMINAL_BAR_DELAY_S:
                    return  # like tqdm's `delay`: a quick run needs no bar
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=self.label, unit="step", leave=False, file=sys.stderr)
            self.bar.update(step - self.bar.n)
            if self.postfix:
                self.bar.set_postfix_str(self.postfix, refresh=False)
            return
        if step < total and now - self.last_update < PAINT_UPDATE_INTERVAL_S:
            return
        self._show(step, total, now)

    def preview(self, images, step, total):
        import base64
        import time

        from .media import grid, png_bytes

        sheet = grid(images, max_width=512)
        if sheet is None:
            return
        png = base64.b64encode(png_bytes(sheet)).decode("ascii")
        shown = min(512, sheet.width * 8)
        self.preview_html = f'<br><img src="data:image/png;base64,{png}" width="{shown}" style="image-rendering: auto">'
        self._show(step, total, time.monotonic())

    def _show(self, step, total, now):
        from IPython.display import display
        from tqdm import tqdm

        self.last_update = now
        line = tqdm.format_meter(
            step, total, now - (self.started or now), ncols=80, prefix=self.label, unit="step", postfix=self.postfix
        )
        bundle = {
            "text/plain": line,
            "text/html": f"<pre style='margin:0'>{_paint_html_text(line)}</pre>{self.preview_html}",
        }
        if self.handle is None:
            self.handle = display(_EMPTY_LIVE, raw=True, display_id=True)
        self.handle.update(bundle, raw=True)

    def _close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self):
        """Clear the live progress (after the result is shown, or when the call failed)."""
        self._close_bar()
        if self.handle is not None:
            self.handle.update(_EMPTY_LIVE, raw=True)
            self.handle = None

    def finish(self, result):
        self.close()
        for note in result.notes:
            print(note)
        if self.rich:
            from IPython.display import display

            display(image_bundle(result), raw=True)
        else:
            print(repr(result))
        for path in result.paths:
            print(f"saved {path}")


def _paint_html_text(text):
    import html

    return html.escape(text, quote=False)


# -- %%finetune ------------------------------------------------------------------------------

FINETUNE_BAR_INTERVAL_S = 0.1
FINETUNE_PLOT_INTERVAL_S = 1.0
FINETUNE_PLOT_SHARE = 0.04  # the live plot may take at most this share of the training time


def loss_curve_png(losses, title="training loss"):
    """PNG bytes of the loss per step (matplotlib's Agg canvas directly: no pyplot, no figure left open)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5, 2.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(range(1, len(losses) + 1), losses, color="#2b6cb0", linewidth=1.3)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _png_bundle(losses, title):
    import base64

    png = base64.b64encode(loss_curve_png(losses, title)).decode("ascii")
    return {"image/png": png, "text/plain": f"<loss curve: {len(losses)} steps>"}


def finetune_bar(partial, ncols=90):
    """A tqdm progress line for a partial FinetuneResult."""
    from tqdm import tqdm

    postfix = f"loss={partial.losses[-1]:.3f}" if partial.losses else None
    return tqdm.format_meter(
        partial.steps, partial.max_steps or None, partial.elapsed_s, ncols=ncols, prefix=partial.name, unit="step", postfix=postfix
    )


class FinetuneView:
    """Shows fine-tuning as it goes: a tqdm progress line and the live loss curve, updated in place.

    When done, both live displays are emptied and the summary and the final curve are shown as new
    outputs, so nbval (which ignores display updates) compares only those (see StoryView). In a
    terminal: a tqdm bar on stderr, then the summary.
    """

    def __init__(self):
        self.rich = rich_frontend()
        self.handles = None
        self.bar = None
        self.last_bar = self.last_plot = 0.0
        self.plot_cost = 0.0

    def update(self, partial):
        import time

        now = time.monotonic()
        if self.rich:
            from IPython.display import display

            if self.handles is None:
                self.handles = [display({"text/plain": ""}, raw=True, display_id=True) for _ in range(2)]
            last = partial.max_steps and partial.steps >= partial.max_steps
            if now - self.last_bar >= FINETUNE_BAR_INTERVAL_S or last:
                self.last_bar = now
                self.handles[0].update({"text/plain": finetune_bar(partial)}, raw=True)
            interval = max(FINETUNE_PLOT_INTERVAL_S, self.plot_cost / FINETUNE_PLOT_SHARE)
            if len(partial.losses) >= 2 and now - self.last_plot >= interval:
                self.handles[1].update(_png_bundle(partial.losses, f"training loss, {partial.name}"), raw=True)
                self.last_plot = time.monotonic()
                self.plot_cost = self.last_plot - now
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=partial.max_steps or None, desc=partial.name, unit="step", file=sys.stderr, leave=True)
        if partial.losses:
            self.bar.set_postfix(loss=f"{partial.losses[-1]:.3f}", refresh=False)
        self.bar.update(partial.steps - self.bar.n)

    def close(self):
        """Empty the live displays (also when the run failed)."""
        if self.handles is not None:
            for handle in self.handles:
                handle.update({"text/plain": ""}, raw=True)
            self.handles = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def finish(self, result):
        self.close()
        if self.rich:
            from IPython.display import display

            display({"text/markdown": result.markdown(), "text/plain": str(result)}, raw=True)
            if len(result.losses) >= 2:
                display(_png_bundle(result.losses, f"training loss, {result.name}"), raw=True)
        else:
            print(str(result))


# -- %%compose -------------------------------------------------------------------------------

COMPOSE_BAR_INTERVAL_S = 0.1
COMPOSE_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s of audio [{elapsed}<{remaining}]"


def compose_bar(done, total, elapsed, ncols=90):
    """A tqdm progress line over the seconds of audio made so far."""
    from tqdm import tqdm

    return tqdm.format_meter(done, total, elapsed, ncols=ncols, prefix="composing", bar_format=COMPOSE_BAR_FORMAT)


class AudioView:
    """Shows %%compose: a progress bar over the seconds of audio made, then the players and pictures.

    In a notebook the bar is a display updated in place and emptied when done, and the result is a
    new output (HTML players and pictures, text/plain summary), so nbval, which ignores display
    updates, compares only the result (see StoryView). In a terminal: a tqdm bar on stderr, then the
    summary.
    """

    def __init__(self):
        self.rich = rich_frontend()
        self.handle = None
        self.bar = None
        self.started = self.last = 0.0

    def progress(self, done, total):
        import time

        now = time.monotonic()
        if self.rich:
            if self.handle is None:
                from IPython.display import display

                self.handle = display({"text/plain": ""}, raw=True, display_id=True)
                self.started = now
            if now - self.last >= COMPOSE_BAR_INTERVAL_S or done >= total:
                self.last = now
                self.handle.update({"text/plain": compose_bar(done, total, now - self.started)}, raw=True)
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="composing", file=sys.stderr, leave=False, bar_format=COMPOSE_BAR_FORMAT)
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def close(self):
        """Empty the live bar (also when the run failed)."""
        if self.handle is not None:
            self.handle.update({"text/plain": ""}, raw=True)
            self.handle = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def finish(self, result):
        self.close()
        if self.rich:
            from IPython.display import display

            display({"text/html": result.html(), "text/plain": repr(result)}, raw=True)
        else:
            print(f"{result.prompt}\n{result.recipe.get('model')}, seed {result.recipe.get('seed')}: {result.summary()}")
