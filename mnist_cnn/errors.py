"""The one exception the command line turns into a one-line message and exit status 2."""


class UserError(Exception):
    """Bad input from the user (arguments, files, data): say what is wrong and what to do."""
