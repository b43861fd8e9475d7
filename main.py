"""Start Retina Curator: the window by default, a headless sub-command when named."""

from __future__ import annotations

import sys


def main() -> int:
    arguments = sys.argv[1:]
    # Sub-commands never load Qt, so they run on machines without a display. A
    # mistyped sub-command goes to the command line too, which names the valid ones.
    from engine.invocation import wants_command

    if wants_command(arguments):
        from engine.cli import main as run_command

        # Called without arguments, it runs sys.argv as the process's own command
        # line and keeps a late Ctrl+C or SIGTERM from killing the process as it exits.
        return run_command()
    from gui.app import main as run_window

    return run_window(arguments)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Ctrl+C while the libraries load, before a command can catch it itself.
        print("Interrupted.", file=sys.stderr)
        sys.exit(130)
