"""Command modules by area; importing this package registers every command on
`medalist.cli_app.app`, in the order `medalist --help` lists them.

Each module imports only typer, `app` and light helpers at the top; the work is imported inside
the command, so `medalist --help` loads no torch, pandas or tracker. A new module is added to
the imports below.
"""

# The import order is the order of the commands in `medalist --help`.
# isort: off
from medalist.commands import project  # noqa: F401 - new
from medalist.commands import training  # noqa: F401 - folds, train, predict
from medalist.commands import lr  # noqa: F401 - lr
from medalist.commands import runs  # noqa: F401 - runs
from medalist.commands import demo  # noqa: F401 - demo
from medalist.commands import analysis  # noqa: F401 - check, report
from medalist.commands import labels  # noqa: F401 - labels
from medalist.commands import ensemble  # noqa: F401 - ensemble, smooth
from medalist.commands import envtools  # noqa: F401 - doctor, docker, cost
from medalist.commands import kaggle  # noqa: F401 - package, kaggle ...
from medalist.commands import tune  # noqa: F401 - tune
from medalist.commands import validation  # noqa: F401 - leak, compare, lb, select, review

# isort: on
