"""Domain errors that the API turns into problem+json responses."""


class HeraldError(Exception):
    """Base of the errors that carry a message meant for the API's client."""

    def __init__(self, detail: str, **fields: list[str]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields


class NotFound(HeraldError):
    """The addressed object does not exist (or was deleted)."""


class Conflict(HeraldError):
    """The request clashes with the current state, e.g. a duplicate phone number."""


class TooLarge(HeraldError):
    """The request's body is larger than the operation takes."""


class Invalid(HeraldError):
    """The request is well-formed but breaks a rule that needs stored state to check, e.g. end before start."""
