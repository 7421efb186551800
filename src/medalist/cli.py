"""The command line: `main()` runs the typer app and turns a UserError into one line and exit
code 2. The commands live in `medalist.commands`, one module per area."""

from __future__ import annotations

import sys

import typer

import medalist.commands  # noqa: F401 - registers the commands of every area
from medalist.cli_app import app
from medalist.errors import UserError, was_stopped

__all__ = ["app", "main"]


def main() -> None:
    """The `medalist` entry point: exit 2 for bad input or usage, without a traceback."""
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except UserError as exc:
        from rich.text import Text

        from medalist.console import err_console

        err_console.print(Text.assemble(("error", "red"), f": {exc}"))
        sys.exit(2)
    except (typer.Exit, SystemExit) as exc:
        if was_stopped(exc):  # Lightning's SIGTERMException is a SystemExit without a code
            _stopped("stopped by SIGTERM")
            sys.exit(143)
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code)
    except typer.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        _stopped("interrupted")
        sys.exit(130)
    except Exception as exc:
        # Usage errors (a missing option value, an unknown option): typer's own click copy and
        # click itself both give them show() and an exit code.
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            _usage_error(exc)
        raise


def _stopped(how: str) -> None:
    """One line for a command stopped from outside: what was kept, and how to go on."""
    from medalist.console import err_console

    err_console.print(
        f"medalist: {how}; finished folds and each fold's last checkpoint are kept: continue "
        "a training run with medalist train --resume runs/<name>",
        markup=False,
    )


def _usage_error(exc: Exception) -> None:
    """A usage error (an unknown option, a value of the wrong type) in one line, as a UserError
    is; a command group called bare still shows its help."""
    from rich.text import Text

    from medalist.console import err_console

    if type(exc).__name__ == "NoArgsIsHelpError":
        exc.show()
        sys.exit(2)
    ctx = getattr(exc, "ctx", None)
    command = " ".join(["medalist", *(ctx.command_path.split()[1:] if ctx is not None else [])])
    message = " ".join(exc.format_message().split())
    err_console.print(Text.assemble(("error", "red"), f": {message} (see {command} --help)"))
    sys.exit(2)


if __name__ == "__main__":
    main()
