"""Assertions shared by the tests."""


def assert_one_line_error(ran, *fragments):
    """A person's mistake shows as one UsageError line, with no traceback."""
    assert not ran.ok, ran.out
    lines = ran.error_lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("UsageError: "), lines
    assert "Traceback" not in ran.err and "Traceback" not in ran.out
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
