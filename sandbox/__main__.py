"""``python -m sandbox`` (``make run``): bot + worker + web with local stand-ins for what is
not configured. See :mod:`sandbox.launcher`."""

from sandbox.launcher import main

if __name__ == "__main__":
    raise SystemExit(main())
