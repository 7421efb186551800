"""`medalist new DIR --data DATA_DIR [--layout script|notebook|hybrid]`: a project folder, its
layout (scripts, notebooks, or both) and a baseline config read from the data.

The competition folder follows the Kaggle layout (train.csv, a folder of training images,
test.csv or a test folder, sample_submission.csv). What can be read from it is written into
`configs/baseline.yaml`; what can't is written as a best guess marked
`# TODO: medalist could not infer this; check it` and listed in the report.

Nothing is written before every check has passed, nothing that exists is overwritten, and a
failure half-way removes what this call made. The project becomes a git repository (`git init`,
no commit: the first commit is the user's).

One module per job, in the order a call goes through them:

- `infer`: the tables (id, image, target and group columns; task, target type, metric, folds),
  with `images` for the image folders, extension and size; both fill a `found.Found`.
- `render`: the text of configs/baseline.yaml (validated), readme.md and .gitignore.
- `create`: `create_project`: the checks, then writing, with rollback on failure.
- `report`: `ProjectReport` and `render_report`, what the CLI prints.
"""

from medalist.workflows.scaffold.create import create_project
from medalist.workflows.scaffold.render import TODO
from medalist.workflows.scaffold.report import ProjectReport, render_report

__all__ = ["TODO", "ProjectReport", "create_project", "render_report"]
