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


class StoryView:
    """One output area that shows a story as it is written, then the finished Markdown.

    Nothing is displayed before the first text arrives, so a bad flag leaves no empty output.
    """

    def __init__(self):
        self.rich = rich_frontend()
        self.handle = None
        self.printed = None

    def update(self, result):
        if self.rich:
            from IPython.display import Markdown, display

            markdown = Markdown(result.markdown())
            if self.handle is None:
                self.handle = display(markdown, display_id=True)
            else:
                self.handle.update(markdown)
        elif len(result.texts) == 1:  # terminal: print what is new; several samples print when complete
            if self.printed is None:
                sys.stdout.write(result.shown_prompt)
                self.printed = ""
            text = result.texts[0]
            sys.stdout.write(text[len(self.printed) :] if text.startswith(self.printed) else "\n" + text)
            sys.stdout.flush()
            self.printed = text

    def finish(self, result):
        if self.rich or len(result.texts) == 1:
            self.update(result)
            if not self.rich:
                sys.stdout.write("\n(stopped)\n" if result.interrupted else "\n")
            return
        print(as_text(result))


def as_text(result):
    parts = []
    for index, text in enumerate(result.texts):
        head = f"--- sample {index + 1} ---\n" if len(result.texts) > 1 else ""
        parts.append(head + result.shown_prompt + text)
    return "\n".join(parts) + ("\n(stopped)" if result.interrupted else "")
