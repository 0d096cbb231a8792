"""`python -m tutorial_lib.gpu_check` still works: the command lives in :mod:`tutorial_lib.infra.gpu_check`."""
import sys

from .infra.gpu_check import main

if __name__ == '__main__':
    sys.exit(main())
