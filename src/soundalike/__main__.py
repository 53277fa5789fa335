"""``python -m soundalike``: the command line."""

from soundalike.app.cli import main

if __name__ == "__main__":  # not in the worker processes that re-import the main module (spawn)
    main()
