"""Notebook references -> objects: a variable name, `last`, `canvas` (or another registered image source; as
a --mask, the canvas's registered mask source: its strokes), a file path or a URL. Resolved here, above the tasks, so the tasks only ever see images, audio and texts.

This is the one module that reads the session's results for `last`; widgets register themselves as
image sources (the style canvas is `canvas`) instead of living in the session.
"""

import os
from pathlib import Path

from . import media
from .errors import CreativeError
from .session import current


def namespace(given=None):
    """The variables a name may refer to: `given`, else the running IPython's user namespace."""
    if given is not None:
        return given
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def _is_variable_name(text):
    return isinstance(text, str) and text.isidentifier() and not os.path.exists(text)


# -- IMAGE --------------------------------------------------------------------------------------


def image(ref, names=None, *, what="image"):
    """(PIL RGB image, label) for an IMAGE argument: a path, an http(s) URL, a variable name, `last`,
    `canvas`, or an object (PIL image, numpy array, result). `label` says where it came from as the user
    would type it again, or None for an object."""
    if not isinstance(ref, (str, Path)):
        return media.open_image(ref, what)
    text = str(ref).strip()
    if not text:
        raise CreativeError(f"the {what} is empty: give a file, a URL, a variable name, `last` or `canvas`")
    return _named_image(text, names, what), text


def names_an_image(ref, names=None):
    """Whether `ref` would be taken as an image here: `last`, a registered source (`canvas`), a variable,
    a file or a URL (%stylize tells a painter's name from a style image this way)."""
    text = str(ref).strip()
    if text == "last" or current().image_source(text) is not None or text.startswith(("http://", "https://")):
        return True
    if os.path.exists(os.path.expanduser(text)):
        return True
    return _is_variable_name(text) and text in namespace(names)


def _named_image(text, names, what):
    session = current()
    if text == "last":
        result = session.last("image")
        if result is None or getattr(result, "image", None) is None:
            raise CreativeError(f"no image made yet in this session, so `last` has nothing to give as the {what}")
        return media.to_rgb(result.image, what, name="last")
    source = session.image_source(text)
    if source is not None:
        return media.to_rgb(source(), what, name=text)
    if text == "canvas":
        raise CreativeError("no style canvas yet: %creative canvas opens one")
    if _is_variable_name(text):
        names = namespace(names)
        if text not in names:
            raise CreativeError(f"no variable or file named {text!r}; give a file, a URL, a variable holding an image, `last` or `canvas`")
        value = names[text]
        if isinstance(value, (str, Path)):  # a variable holding a path or URL
            return media.open_path_or_url(str(value).strip(), what)
        return media.to_rgb(value, what, name=text)
    return media.open_path_or_url(text, what)


def mask(ref, names=None):
    """(PIL L image, label) for a --mask: white repaints. A name with a registered mask source (`canvas`: the
    strokes drawn on the style canvas, white where drawn) gives that; any other IMAGE is read as an image."""
    from PIL import Image

    if isinstance(ref, (str, Path)):
        text = str(ref).strip()
        source = current().mask_source(text) if text else None
        if source is not None:
            picture = source()
            if not isinstance(picture, Image.Image):
                picture = media.to_rgb(picture, "mask", name=text)
            return picture.convert("L"), text
    picture, label = image(ref, names, what="mask")
    return picture.convert("L"), label


# -- AUDIO, texts and recipes -------------------------------------------------------------------


def audio(ref, names=None, what="melody"):
    """(audio channels x samples, sample rate, label) for a --melody or a --continue (`what`): a WAV path, a
    variable holding an audio result, `last` (the latest audio result), an audio result or an (array,
    sample_rate) pair."""
    from . import audio as audio_files

    if isinstance(ref, str) and ref.strip() == "last":
        result = current().last("audio")
        if result is None or getattr(result, "audio", None) is None:
            raise CreativeError(f"no music made yet in this session, so `last` has nothing to give to --{what}")
        samples, rate, _ = audio_files.load_audio(result, what)
        return samples, rate, "last"
    if _is_variable_name(ref):
        held = namespace(names).get(ref)
        if hasattr(held, "audio") and hasattr(held, "sample_rate"):
            samples, rate, _ = audio_files.load_audio(held, what)
            return samples, rate, ref  # the label is the name: a recipe that names it runs again in this notebook
    return audio_files.load_audio(ref, what)


def midi(ref, names=None):
    """(notes, label) for a --prompt-midi: a .mid path, a variable holding a MIDI result (or a path, or
    bytes), `last` (the latest MIDI result), a MIDI result or the bytes of a MIDI file. A file without
    notes is one line."""
    from . import midi as midi_files

    typed = ref.strip() if isinstance(ref, str) else None  # the label: as the person typed it
    if typed == "last":
        ref = current().last("midi")
        if ref is None:
            raise CreativeError("no MIDI made yet in this session, so `last` has nothing to give to --prompt-midi")
    elif _is_variable_name(ref):
        names = namespace(names)
        if ref not in names:
            raise CreativeError(f"no variable or file named {ref!r}; give a .mid file, a variable holding a MIDI result, or `last`")
        ref = names[ref]
    if hasattr(ref, "notes") and hasattr(ref, "midi"):  # a MidiResult
        notes, label = list(ref.notes), typed or "(a MIDI result)"
    elif isinstance(ref, (bytes, bytearray)):
        notes, label = midi_files.read_notes(bytes(ref), "the MIDI bytes"), typed or "(MIDI bytes)"
    elif isinstance(ref, (str, Path)):
        text = str(ref).strip()
        notes, label = midi_files.read_notes(midi_files.read_midi_file(text, "--prompt-midi file"), text), typed or text
    else:
        raise CreativeError(f"--prompt-midi takes a .mid file, a MIDI result or `last`, not {type(ref).__name__}")
    if not notes:
        raise CreativeError(f"{label!r} holds no notes to continue; give a MIDI file with notes in it")
    return notes, label


def texts(ref, names=None, *, name_or_path=False):
    """A corpus.Texts for %%finetune's data: a text, a list of texts, or a path. With `name_or_path`
    (--data on a magic line) a string is a variable name of the notebook, else a path."""
    from . import corpus

    if name_or_path and isinstance(ref, str):
        word = ref.strip()
        if _is_variable_name(word) and word in namespace(names):
            return corpus.read_texts(namespace(names)[word])
        return corpus.read_texts(Path(word))
    return corpus.read_texts(ref)


def recipe(ref, names=None):
    """A recipe dict from a dict, a result, an image, a variable holding one of those, a PNG path, or the
    WAV or MIDI file of a %%compose --save."""
    from . import recipes

    if _is_variable_name(ref) and ref in namespace(names):
        ref = namespace(names)[ref]
    if isinstance(ref, dict):
        return ref
    held = getattr(ref, "recipe", None)
    if isinstance(held, dict):
        return held
    if isinstance(ref, (str, Path)) and str(ref).strip().lower().endswith((".wav", ".mid", ".midi")):  # %%compose's files
        from . import audio

        found = audio.read_recipe(os.path.expanduser(str(ref).strip()))
        if found is None:
            raise CreativeError(f"{str(ref).strip()!r} carries no creative_magics recipe")
        return found
    return recipes.read_recipe(ref)


# -- STORY (%story continue / again) ---------------------------------------------------------------


def story(ref=None, names=None, *, what="continue"):
    """The StoryResult that `%story continue|again [NAME]` works on: None or `last` = the latest story, a
    variable holding a StoryResult, or a Chat (its latest reply)."""
    from .results import Chat, StoryResult

    value = ref
    if ref is None or (isinstance(ref, str) and ref.strip() == "last"):
        value = current().last("text")
        if value is None:
            raise CreativeError(f"no story yet in this session: write one with %%story first, then %story {what}")
    elif isinstance(ref, str):
        text = ref.strip()
        if not text.isidentifier():
            raise CreativeError(f"%story {what} takes the name of a variable holding a story or a chat, not {text!r}")
        names = namespace(names)
        if text not in names:
            raise CreativeError(f"no variable named {text!r}: give one holding a story (-o NAME) or a chat, or nothing for the latest story")
        value = names[text]
    if isinstance(value, Chat):
        if not value.replies:
            raise CreativeError(f"the chat {ref!r} has no reply of this session yet: add a turn with %%story --chat {ref}")
        value = value.replies[-1]
    if not isinstance(value, StoryResult):
        raise CreativeError(f"{ref!r} holds a {type(value).__name__}, not a story (StoryResult) or a Chat: %story {what} works on those")
    return value


# -- %creative similar ---------------------------------------------------------------------------


def similarity_query(query, names=None):
    """("text"|"image", the text or PIL image, the session result it is or None) for %creative similar's QUERY:
    `last` (the latest result), a variable holding an image, a result or a text, an image file, or words."""
    session = current()
    if isinstance(query, str):
        text = query.strip()
        if not text:
            raise CreativeError("the query is empty: give words, an image (a file or a variable) or last")
        if text == "last":
            for result in reversed(list(session.results)):
                if getattr(result, "images", None) or getattr(result, "kind", None) == "text":
                    return _query_of(result) + (result,)
            raise CreativeError("no images or texts in this session yet, so `last` has nothing to compare with")
        names_ = namespace(names)
        if _is_variable_name(text) and text in names_:
            value = names_[text]
            if isinstance(value, str):  # a variable holding words
                return ("text", value, None) if value.strip() else similarity_query(value, names)
            return _query_of(value) + (value,)
        if os.path.isfile(os.path.expanduser(text)) and os.path.splitext(text)[1].lower() in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"):
            return ("image", image(text, names, what="query image")[0], None)
        return ("text", text, None)
    return _query_of(query) + (query,)


def _query_of(value):
    from .results import StoryResult

    if isinstance(value, StoryResult):
        return ("text", value.text)
    return ("image", media.open_image(value, "query image")[0])


def folder_items(folder, image_suffixes, text_suffixes):
    """The image and text files of `folder` (not its subfolders), sorted; one line when there are none."""
    path = os.path.expanduser(str(folder))
    if not os.path.isdir(path):
        raise CreativeError(f"--folder {folder}: no such folder")
    files = sorted(os.path.join(path, name) for name in os.listdir(path) if name.lower().endswith(tuple(image_suffixes) + tuple(text_suffixes)))
    if not files:
        raise CreativeError(f"--folder {folder} holds no images ({', '.join(image_suffixes)}) or texts (.txt) to compare")
    return files


def text_file(path):
    with open(path, encoding="utf-8", errors="replace") as source:
        return source.read()
