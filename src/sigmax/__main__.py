"""``python -m sigmax``: the same as the ``sigmax`` command."""

from sigmax.cli import main

raise SystemExit(main())
