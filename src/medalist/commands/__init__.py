"""Command modules by area; importing one registers its commands on `medalist.cli_app.app`.

Each module imports only typer and `app` at the top; the work is imported inside the command.
"""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")
