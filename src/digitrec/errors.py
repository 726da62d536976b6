"""One exception type for mistakes a user can cause and fix.

Entry points (CLI, web) turn it into a one-line message or a 4xx answer; anything else is a bug and may raise.
"""


class DigitrecError(Exception):
    """A problem the user can fix; the message says what to do next."""
