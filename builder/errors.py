"""The one exception tree of pybuild.

Every error a user can cause derives from PybuildError; cli.py is the only place that turns
them into messages and exit codes.  Anything else escaping is an internal error (a bug).
"""

from __future__ import annotations

from typing import Any, Protocol


class PybuildError(Exception):
    """Root of every expected failure.  ``exit_code`` is what cli.py exits with.

    Every subclass pickles with its attributes (``__reduce__``): the sandbox's helper process
    sends the very exception it raised back to the parent, which raises it again."""

    exit_code = 1

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException's own reduce calls ``cls(*args)``, which the keyword-only
        # constructors below refuse; rebuild without __init__ and restore the attributes.
        return _rebuild, (type(self), self.args), self.__dict__


def _rebuild(cls: type[PybuildError], args: tuple[Any, ...]) -> PybuildError:
    """Unpickling half of ``PybuildError.__reduce__``: an instance of ``cls`` with ``args``
    (its attributes are set afterwards from the pickled ``__dict__``)."""
    return cls.__new__(cls, *args)


class SourcePosition(Protocol):
    """Where something is in a Buildfile (builder.buildfile.instructions.Position has this shape)."""

    @property
    def file(self) -> str: ...
    @property
    def line(self) -> int: ...
    @property
    def column(self) -> int: ...
    @property
    def source_line(self) -> str: ...


class BuildfileError(PybuildError):
    """A Buildfile could not be parsed or planned.  Says FILE:LINE:COL and shows a caret."""

    exit_code = 2

    def __init__(self, message: str, *, file: str, line: int, column: int,
                 source_line: str = "", hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.source_line = source_line
        self.hint = hint

    @classmethod
    def at(cls, pos: SourcePosition, message: str, *, hint: str | None = None) -> BuildfileError:
        """The error ``message`` at instruction position ``pos`` (its file, line, column and
        source line, so the message shows the line with a caret)."""
        return cls(message, file=pos.file, line=pos.line, column=pos.column,
                   source_line=pos.source_line, hint=hint)

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.message}"
        if self.source_line:
            shown = self.source_line.expandtabs(1).rstrip("\n")
            text += f"\n    {shown}\n    {' ' * max(self.column - 1, 0)}^"
        if self.hint:
            text += f"\n{self.hint}"
        return text


class ExpandError(PybuildError):
    """A word could not be expanded (missing quote or ``}``, bad substitution, ``${v?}``).
    Pure expansion raises it without a position; the dispatcher makes it a BuildfileError."""

    exit_code = 2


class MountError(PybuildError):
    """A bad ``RUN --mount``/``--network``/``--security`` value; ``hint`` is a did-you-mean or
    a usage line.  The parser and the handler turn it into a BuildfileError at the flag."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None, *, at: str = "") -> None:
        super().__init__(message)
        self.hint = hint
        self.at = at            # the text in the value the error is about (for the caret)


class UsageError(PybuildError):
    """The command line names something that is not there (a Buildfile, …)."""

    exit_code = 2


class ContextError(PybuildError):
    """An ADD/COPY source is missing, unreadable or outside the build context."""


class StepError(PybuildError):
    """A build step failed.  ``str()`` is ``Buildfile:LINE: step N/M: RUN <cmd>: exit code X``
    (without ``FILE:LINE:`` when the step has no position).  ``exit_code``, when given, is
    what the command exited with (``returncode``); a step error that wraps another error
    keeps that error's exit status for pybuild (``exit_code`` of the class, per instance)."""

    def __init__(self, *, step: int, total: int, instruction: str, reason: str,
                 exit_code: int | None = None, file: str = "", line: int = 0) -> None:
        super().__init__(reason)
        self.step = step
        self.total = total
        self.instruction = instruction
        self.reason = reason
        self.returncode = exit_code
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file else ""
        return f"{where}step {self.step}/{self.total}: {self.instruction}: {self.reason}"


class LayerError(PybuildError):
    """A layer could not be captured or unpacked (unsafe entry, bad tar, I/O failure)."""


class StoreError(PybuildError):
    """The image store is missing something or could not be written."""


class ImageNotFound(StoreError):
    """No image with that name, tag or id in the store."""


class ArchiveError(PybuildError):
    """A docker-archive / OCI archive / rootfs tarball is malformed or fails verification."""


class SandboxError(PybuildError):
    """The RUN sandbox (namespaces, mounts, chroot) could not be set up."""


class RegistryError(PybuildError):
    """A registry could not be reached, refused us, or sent something that does not verify."""


class ContainerNotFound(PybuildError):
    """No kept container with that name."""


class ManifestError(PybuildError):
    """A manifest, image index or descriptor is malformed (not JSON, a required field missing
    or of the wrong type).  Readers wrap it in their own error (RegistryError, ArchiveError)."""


class CIConfigError(PybuildError):
    """A CI rules file (``.dive-ci``, --ci-config) is unreadable or has a bad rule or value.
    Says FILE:LINE of the key."""

    exit_code = 2
