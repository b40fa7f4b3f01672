"""Errors a user can cause. The command-line tools print them as one line and exit with code 2."""


class UsageError(ValueError):
    """Bad usage or bad input: the message says what was wrong and what to do, in one line."""
