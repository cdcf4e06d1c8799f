"""`python -m cedros_pay.sandbox`: the same as `cedros-pay sandbox`."""

from cedros_pay.sandbox.cli import main

raise SystemExit(main())
