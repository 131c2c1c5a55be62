"""The analytical warehouse dbt builds into (DuckDB embedded)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
from dagster import ConfigurableResource
from pydantic import Field

from sands.warehouse import model_rows


class WarehouseResource(ConfigurableResource):
    """The DuckDB file the dbt models live in."""

    path: str = Field(description="DuckDB database file dbt builds into.")

    def model_rows(self, model: str, start: date, end: date) -> pa.Table:
        """Rows of a dbt model for feature dates in [start, end]."""
        return model_rows(self.path, model, start, end)

    def dbt_target_path(self) -> Path:
        """Where dbt writes its artifacts for this warehouse."""
        return Path(self.path).parent / "dbt-target"

    def dbt_environment(self, lake_root: str, storage_options: dict[str, str]) -> dict[str, str]:
        """Environment the dbt profile and its Delta sources read (object-store settings too)."""
        return {
            **storage_options,
            "SANDS_WAREHOUSE_PATH": self.path,
            "SANDS_LAKE_URI": lake_root,
            "DO_NOT_TRACK": "1",
        }
