"""medalist: a workbench for Kaggle image competitions."""

__version__ = "0.1.0"
