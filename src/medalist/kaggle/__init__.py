"""Shipping runs to Kaggle: the offline package and its notebook, the offline check, the API.

Modules: `package` (the dataset folder), `notebook` (the notebook, and the functions it calls on
Kaggle), `check` (`medalist package --check`), `api` (the `kaggle` client), `credentials`.
Nothing here imports `kaggle` at import time: `import kaggle` authenticates when imported.
"""
