import pytest
from IPython.testing.globalipapp import start_ipython

from creative_magics import session as session_module
from helpers import cell_runner


@pytest.fixture(scope="session")
def shell():
    ip = start_ipython()
    ip.run_line_magic("load_ext", "creative_magics")
    return ip


@pytest.fixture()
def ip(shell):
    """The test shell with the extension loaded, a fresh session (empty cache) and default options."""
    magics = shell.magics_manager.registry["CreativeMagics"]
    for name, trait in magics.traits(config=True).items():
        magics.set_trait(name, trait.default())
    magics.profile = "tiny"
    session_module.reset()
    session_module.current().attach(magics)
    yield shell
    session_module.reset()
    session_module.current().attach(magics)


@pytest.fixture()
def run(ip, capsys):
    """run(cell_source) -> Ran with the shell's result and what it printed."""
    return cell_runner(ip, capsys)


@pytest.fixture(scope="session")
def transformers_serve():
    """A real OpenAI-compatible server (`transformers serve`) on 127.0.0.1, started once for the whole run
    (~20 s) and stopped by its PID at the end. It serves any local model folder, named by its path."""
    from servers import TransformersServe

    server = TransformersServe().start()
    yield server
    server.stop()


@pytest.fixture()
def standin():
    """The OpenAI protocol stand-in (tests/openai_standin.py): images API and every fault, on 127.0.0.1."""
    from openai_standin import StandIn

    server = StandIn().start()
    yield server
    server.stop()
