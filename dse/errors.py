"""The error a user can fix: printed as one clear line, never a traceback."""


class UserError(Exception):
    """A mistake in the user's input (arguments, files, names); its message says what to fix."""
