"""The one exception type users see: its message is a single line naming the file and the problem."""


class SwaplineError(Exception):
    """A failure the user can act on (bad file, no face, wrong model); printed without a traceback."""


class Interrupted(SwaplineError):
    """The user stopped the work (Ctrl-C, SIGTERM); what was finished is kept. Exit status 130."""

    exit_code = 130
