"""The one exception type for errors a user can cause."""


class WmarkError(Exception):
    """A user-facing error: bad file, unknown model, too-long message, corrupt checkpoint.

    The CLI prints its message on one line and exits with code 2.
    """
