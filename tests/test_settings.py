"""%config CreativeMagics options: validated, one clear line on a bad value, the old value kept."""

import pytest


@pytest.mark.parametrize(
    "option, bad, fragment",
    [
        ("device", "'gpu'", "device must be auto, cpu, cuda, cuda:N or mps"),
        ("dtype", "'fp8'", "dtype"),
        ("memory_budget_gb", "-1", "memory_budget_gb must be >= 0"),
        ("profile", "'huge'", "profile"),
        ("aliases", "{'x': 3}", "aliases maps names to hub ids or folders"),
    ],
)
def test_bad_config_value_is_refused_in_one_line(ip, run, caplog, option, bad, fragment):
    # IPython's %config reports a refused value through logging.error: one record, one line.
    magics = ip.magics_manager.registry["CreativeMagics"]
    before = getattr(magics, option)
    caplog.clear()
    ran = run(f"%config CreativeMagics.{option} = {bad}")
    assert getattr(magics, option) == before
    messages = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(messages) == 1 and fragment in messages[0] and "\n" not in messages[0], messages
    assert "Traceback" not in ran.err


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("device", "'CPU'", "cpu"),
        ("device", "'cuda:1'", "cuda:1"),
        ("dtype", "'bfloat16'", "bfloat16"),
        ("memory_budget_gb", "2.5", 2.5),
        ("profile", "'auto'", "auto"),
        ("aliases", "{'mine': '/models/mine'}", {"mine": "/models/mine"}),
    ],
)
def test_good_config_value_is_taken(ip, run, option, value, expected):
    run(f"%config CreativeMagics.{option} = {value}")
    assert getattr(ip.magics_manager.registry["CreativeMagics"], option) == expected


def test_config_lists_the_options_with_help(ip, run):
    ran = run("%config CreativeMagics")
    for option in ("device", "dtype", "memory_budget_gb", "aliases", "profile", "story_defaults", "trust_remote_code"):
        assert f"CreativeMagics.{option}" in ran.out


def test_profile_default_comes_from_the_environment(monkeypatch):
    from creative_magics import settings

    monkeypatch.setenv("CREATIVE_MAGICS_PROFILE", "auto")
    assert settings._env_profile() == "auto"
    monkeypatch.setenv("CREATIVE_MAGICS_PROFILE", "nonsense")
    assert settings._env_profile() == "default"
