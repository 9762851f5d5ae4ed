"""Helpers shared by the tests: running a cell in a shell, and the one-line-error assertion."""


class Ran:
    def __init__(self, result, out, err):
        self.result, self.out, self.err = result, out, err

    @property
    def ok(self):
        return self.result.success

    @property
    def error_lines(self):
        return [line for line in self.err.splitlines() if line.strip()]


def cell_runner(shell, capsys):
    """run(cell_source) -> Ran with the shell's result and what the cell printed."""

    def run(source):
        capsys.readouterr()
        result = shell.run_cell(source, store_history=False)
        captured = capsys.readouterr()
        return Ran(result, captured.out, captured.err)

    return run


def assert_one_line_error(ran, *fragments):
    """A person's mistake shows as one UsageError line, with no traceback."""
    assert not ran.ok, ran.out
    lines = ran.error_lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("UsageError: "), lines
    assert "Traceback" not in ran.err and "Traceback" not in ran.out
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
