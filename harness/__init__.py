"""recsec's harness: grids, planning, Ray execution, MLflow tracking, data, metrics, reports, CLI."""

__version__ = "0.1.0"
