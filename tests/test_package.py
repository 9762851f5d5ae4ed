"""The extension loads fast and light: no torch, transformers or diffusers until a model is used."""

import subprocess
import sys
import textwrap

HEAVY = ("torch", "transformers", "diffusers", "peft", "ipywidgets", "ipycanvas", "openai")


def _fresh_python(code):
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_load_ext_imports_nothing_heavy():
    out = _fresh_python(
        f"""
        import sys
        from IPython.testing.globalipapp import start_ipython
        ip = start_ipython()
        ip.run_line_magic("load_ext", "creative_magics")
        assert "story" in ip.magics_manager.magics["cell"]
        assert "creative" in ip.magics_manager.magics["line"]
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
        """
    )
    assert out.strip() == "[]"


def test_import_gives_the_python_api_lightly():
    out = _fresh_python(
        f"""
        import sys, creative_magics
        assert callable(creative_magics.story)
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
        """
    )
    assert out.strip() == "[]"


def test_magics_are_registered(shell):
    assert {"story"} <= set(shell.magics_manager.magics["cell"])
    assert "creative" in shell.magics_manager.magics["line"]
