"""Errors a user can act on: one line saying what is wrong, a caret under where."""

from __future__ import annotations

WINDOW = 60  # columns of the expression shown around the caret


class SymgradError(Exception):
    """Bad input: the CLI prints `format()` and exits with status 2, no traceback."""

    def __init__(
        self, message: str, text: str | None = None, column: int | None = None
    ):
        super().__init__(message)
        self.message = message
        self.text = text
        self.column = column  # 0-based index into text

    def format(self) -> str:
        """The message, then the expression with a caret under the offending column."""
        lines = [self.message]
        if self.text is not None and self.column is not None:
            text = self.text.replace("\n", " ").replace("\t", " ")
            col = max(0, min(self.column, len(text)))
            start = max(0, col - WINDOW // 2)
            end = min(len(text), start + WINDOW)
            prefix = "..." if start > 0 else ""
            suffix = "..." if end < len(text) else ""
            lines.append("  " + prefix + text[start:end] + suffix)
            lines.append("  " + " " * (len(prefix) + col - start) + "^")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()
