"""How we call the Hugging Face libraries: quietly (their bars and chatter would land in notebooks'
stderr), and never running a model's own code unless `%config CreativeMagics.trust_remote_code` says so."""

import contextlib
import warnings


@contextlib.contextmanager
def quiet():
    """Silence the libraries' loading bars and chatter."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            # diffusers still passes huggingface_hub a deprecated argument; the user can do nothing about it
            warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
            yield
    finally:
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.utils.logging.enable_progress_bar()


def trusts_remote_code(settings):
    """The `trust_remote_code` every from_pretrained call gets: False unless %config enables it. Passed
    explicitly, because transformers' Auto classes otherwise ask on stdin (input()) when a repo ships code."""
    return bool(getattr(settings, "trust_remote_code", False))


def dtype_kwarg():
    """The name from_pretrained takes the precision by: `dtype` since transformers 4.56, `torch_dtype` before."""
    import transformers

    major, minor = (int(p) for p in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
