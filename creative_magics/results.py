"""What the magics and the Python API return: the output and the recipe that reproduces it."""

import html
from dataclasses import dataclass, field


@dataclass(eq=False)
class StoryResult:
    """Text made by %%story. `.text` is the first sample, `.texts` all of them."""

    texts: list
    recipe: dict
    prompt: str = ""
    shown_prompt: str = ""
    interrupted: bool = False
    kind: str = field(default="text", init=False)

    @property
    def text(self):
        return self.texts[0] if self.texts else ""

    def markdown(self):
        return story_markdown(self.shown_prompt, self.texts, self.recipe.get("seed"), self.interrupted)

    def _repr_markdown_(self):
        return self.markdown()

    def _repr_pretty_(self, printer, cycle):
        printer.text(repr(self))

    def __str__(self):
        return self.text

    def __repr__(self):
        model, seed = self.recipe.get("model"), self.recipe.get("seed")
        head = self.text[:60].replace("\n", " ")
        more = f", {len(self.texts)} samples" if len(self.texts) > 1 else ""
        return f"<StoryResult {model} seed={seed}{more}: {head!r}{'...' if len(self.text) > 60 else ''}>"


def bold_lines(text):
    """Markdown bold for a prompt, line by line (bold does not span paragraphs)."""
    escaped = text.replace("*", r"\*")
    return "  \n".join(f"**{line.strip()}**" if line.strip() else "" for line in escaped.splitlines())


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
            body = bold_lines(shown_prompt) + joint + body
        if len(texts) > 1:
            body = f"**Sample {index + 1}**\n\n{body}"
        parts.append(body)
    out = "\n\n---\n\n".join(parts)
    if interrupted:
        out += "\n\n*(stopped)*"
    return out


def escape_html(text):
    return html.escape(text, quote=True)
