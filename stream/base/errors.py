"""Exceptions shared by every finsent package."""


class UserError(Exception):
    """An error the user can fix (bad input, missing tool, port taken).

    The CLI prints it as one line and exits with status 2; never include
    passwords in the message (use ``stream.base.redact.redact``).
    """
