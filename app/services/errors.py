"""The base of every refusal a business rule makes."""

from __future__ import annotations


class ServiceError(Exception):
    """A rule refused the request; `message` (Chinese) is shown to the student as it is.

    Subclasses set a default `message`; a raise may pass a more precise one (with a date, a name).
    """

    message = "操作失败，请稍后再试"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
