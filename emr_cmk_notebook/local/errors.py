"""Errors the emulated services answer with, in the shape the real service uses."""

from __future__ import annotations


class AwsError(Exception):
    """An error answer: the AWS error code, its message and the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def validation(message: str) -> AwsError:
    """A ``ValidationException`` (HTTP 400), as EMR Serverless and CloudTrail answer bad input."""
    return AwsError("ValidationException", message, 400)


def not_found(message: str) -> AwsError:
    """A ``ResourceNotFoundException`` (HTTP 404)."""
    return AwsError("ResourceNotFoundException", message, 404)
