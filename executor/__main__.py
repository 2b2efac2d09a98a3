"""``python -m executor`` (and the bundle's entry point): run the Mesos executor."""

import sys

from executor.main import main

if __name__ == "__main__":
    sys.exit(main())
