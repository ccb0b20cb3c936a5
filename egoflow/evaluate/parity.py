"""Where the official scripts and the sensible reading differ on edge inputs, and how egoflow says so.

Every metric defaults to the official behaviour (numbers equal to the reference scripts) and offers the other
reading as a named option; when an input actually triggers the difference a ``ParityWarning`` names the option.
"""


class ParityWarning(UserWarning):
    """The input hits an edge where the official script and the sensible reading give different numbers."""
