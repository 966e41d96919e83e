"""The one exception type users see: its message is a single line naming the file and the problem."""


class SwaplineError(Exception):
    """A failure the user can act on (bad file, no face, wrong model); printed without a traceback."""
