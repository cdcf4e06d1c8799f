"""`python -m bench`: see bench/runner.py for what is measured and how."""

from bench.runner import main

raise SystemExit(main())
