"""The MLflow model registry as a resource: local SQLite embedded, a server in production."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dagster import ConfigurableResource
from pydantic import Field

from sands.models.tracking import DEFAULT_DAGSTER_UI
from sands.settings import is_uri, join

if TYPE_CHECKING:
    from sands.models.registry import Registry


class RegistryResource(ConfigurableResource):
    """MLflow tracking/registry URI, the registered ranker's name, and where reports go."""

    tracking_uri: str = Field(description="sqlite:///... embedded, or an MLflow server URL.")
    artifact_location: str | None = Field(
        default=None, description="Artifact root for a new experiment (embedded: a local folder)."
    )
    model_name: str = Field(default="sands-ranker")
    experiment: str = Field(default="shifting-sands")
    lake_root: str = Field(description="The lake; the champion history is a Delta table in it.")
    storage_options: dict[str, str] = Field(default_factory=dict)
    reports_dir: str = Field(description="Where HTML reports are written besides MLflow.")
    mlflow_ui_url: str | None = Field(
        default=None,
        description="The MLflow UI for links (default: the tracking server, else `sands mlflow`).",
    )
    dagster_ui_url: str = Field(
        default=DEFAULT_DAGSTER_UI, description="The Dagster UI, for links from MLflow back."
    )

    @property
    def history_uri(self) -> str:
        return join(self.lake_root, "registry", "champion_history")

    def open(self) -> Registry:
        """A registry client for this configuration."""
        # Imported on use: heavy, and the code location is loaded by every step process.
        from sands.models.registry import Registry

        return Registry(
            tracking_uri=self.tracking_uri,
            history_uri=self.history_uri,
            model_name=self.model_name,
            experiment=self.experiment,
            artifact_location=self.artifact_location,
            storage_options=self.storage_options,
            ui_url=self.mlflow_ui_url,
        )

    def report_path(self, name: str) -> str:
        """A local path for report `name`, its folder created."""
        if is_uri(self.reports_dir):
            raise ValueError("reports_dir must be a local folder; reports reach MLflow as well")
        Path(self.reports_dir).mkdir(parents=True, exist_ok=True)
        return str(Path(self.reports_dir, name))
