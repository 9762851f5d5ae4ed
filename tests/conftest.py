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
