"""The one exception type that reaches users as a one-line message and exit code 2."""


class GuimoError(Exception):
    """A user-facing error: bad input, a missing file, an unknown name.

    The CLI prints ``error: <message>`` and exits with code 2, never a traceback. Library code
    raises it wherever the fix is on the user's side (a path, a config key, a malformed line).
    """


def where(path: object, line: int | None = None) -> str:
    """Format a location as ``path:line`` for error messages that name the file and line."""
    return f"{path}:{line}" if line is not None else str(path)
