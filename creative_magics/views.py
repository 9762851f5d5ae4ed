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
