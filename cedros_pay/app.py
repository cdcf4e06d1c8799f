"""The public entry point: `create_app(config, ...)` and the app it returns.

The composition itself lives in `cedros_pay.bootstrap`; this module keeps the import
path that embedders, the CLI and the README use.
"""

from cedros_pay.bootstrap import (
    CedrosApp,
    build_services,
    create_app,
    open_configured_store,
    version,
)

__all__ = ["CedrosApp", "build_services", "create_app", "open_configured_store", "version"]
