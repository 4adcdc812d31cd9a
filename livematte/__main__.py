"""``python -m livematte`` runs the command-line interface."""

import sys

from livematte.cli import main

if __name__ == "__main__":
    sys.exit(main())
