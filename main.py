"""Start Retina Curator: the window by default, a headless sub-command when named."""

from __future__ import annotations

import sys


def main() -> int:
    arguments = sys.argv[1:]
    # Sub-commands never load Qt, so they run on machines without a display.
    from engine.cli import COMMANDS

    if arguments and arguments[0] in COMMANDS:
        from engine.cli import main as run_command

        return run_command(arguments)
    from gui.app import main as run_window

    return run_window(arguments)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Ctrl+C while the libraries load, before a command can catch it itself.
        print("Interrupted.", file=sys.stderr)
        sys.exit(130)
