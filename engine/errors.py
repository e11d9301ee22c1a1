"""Errors with stable codes, like spaCy's ``E###``.

Every error a user can cause carries a code, a one-line message and, where it is
known, the file, line and field at fault, so the CLI can print one precise line and
exit 2 instead of a traceback.
"""
from __future__ import annotations


class TagsmithError(Exception):
    """A problem with the user's input, rules or options (exit code 2 in the CLI)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __reduce__(self) -> tuple:
        # Keyword fields survive pickling (errors cross from worker processes).
        return (_rebuild, (self.code, self.message, self.file, self.line, self.field))

    @property
    def detail(self) -> str:
        """Where and what, without the code: ``file:line: field: message``."""
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            where = f"line {self.line}: "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"

    def __str__(self) -> str:
        return f"[{self.code}] {self.detail}"


def _rebuild(code: str, message: str, file: str | None, line: int | None, field: str | None) -> TagsmithError:
    return TagsmithError(code, message, file=file, line=line, field=field)


# Codes, grouped by stage. Keep them stable: users grep for them.
E_REQUEST = "E100"  # raw request cannot be parsed
E_MAX_TAGS = "E101"  # N is not a positive integer
E_EMPTY_TEXT = "E102"  # empty description
E_ENCODING = "E103"  # input is not UTF-8
E_INPUT = "E104"  # unreadable input file / record
E_OUTPUT = "E105"  # output cannot be opened for writing (unwritable path)
E_LOCKED = "E106"  # another batch process is writing the same output
E_WRITE_STOPPED = "E107"  # writing failed mid-run (disk full, file-size limit): exit 1, --resume finishes
E_TOO_LARGE = "E108"  # an input over a set bound (the service's body size, items per call, tags per list)
E_TAXONOMY = "E200"  # malformed tag list
E_DUPLICATE_TAG = "E201"  # the same tag twice in a tag list
E_RULES = "E300"  # rule pack invalid
E_REGEX_UNSAFE = "E301"  # a rule regex can backtrack catastrophically
E_PACK_LIMIT = "E302"  # a pack file is too large or expands too far (YAML alias bomb)
E_MODEL = "E400"  # model cannot be found or loaded
E_ADAPTER = "E401"  # adapter cannot be loaded, or does not fit the model or the taxonomy
E_TRAIN = "E402"  # training data unusable (no labelled items, unknown tags)
E_OPTION = "E500"  # bad command-line option combination
E_WORKER = "E600"  # a batch worker process died mid-run (answers so far are kept; --resume finishes)
E_BUSY = "E601"  # the service's queue is full: try again later (HTTP 503)
E_INTERNAL = "E900"  # a bug: the service answers 500 and stays up
