"""The error a user can fix: printed as one clear line, never a traceback."""


class UserError(Exception):
    """A mistake in the user's input (arguments, files, names); its message says what to fix."""


class objective_errors:
    """Context manager turning the objectives' input errors into one-line user errors."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None:
            return False
        from objectives.errors import ObjectiveInputError

        if isinstance(error, ObjectiveInputError):
            raise UserError(str(error)) from None
        return False
