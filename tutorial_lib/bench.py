"""`python -m tutorial_lib.bench` still works: the command lives in :mod:`tutorial_lib.infra.bench`."""
from .infra.bench import main

if __name__ == '__main__':
    main()
