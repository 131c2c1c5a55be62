"""Where the landing zone and the lake are, as Dagster resources (local paths or object stores)."""

from __future__ import annotations

import fsspec
from dagster import ConfigurableResource
from pydantic import Field

from sands.ingest import landing
from sands.ingest.bronze import bronze_uri, quarantine_uri
from sands.ingest.contract import Entity


class LandingZoneResource(ConfigurableResource):
    """The landing zone that upstream systems (and the simulator) drop files into."""

    root: str = Field(description="Local folder or object-store URI of the landing zone.")
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="Object-store options."
    )

    def filesystem(self) -> tuple[fsspec.AbstractFileSystem, str]:
        return landing.filesystem(self.root, self.storage_options)

    def files(self, entity: Entity) -> list[landing.LandingFile]:
        """Every data file of one feed currently in the landing zone."""
        fs, root = self.filesystem()
        return landing.list_files(fs, root, entity)


class LakeResource(ConfigurableResource):
    """The Delta lake: bronze tables, quarantine tables and (later) features and models."""

    root: str = Field(description="Local folder or object-store URI of the lake.")
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="delta-rs storage options."
    )

    def bronze(self, entity: Entity) -> str:
        return bronze_uri(self.root, entity)

    def quarantine(self, entity: Entity) -> str:
        return quarantine_uri(self.root, entity)
