"""Dagster resources, and the one place that picks embedded or production settings."""

from __future__ import annotations

import os

from resources.dbt import dbt_resource
from resources.online import OnlineStoreResource
from resources.registry import RegistryResource
from resources.storage import LakeResource, LandingZoneResource
from resources.tracking import mlflow_resource
from resources.warehouse import WarehouseResource
from sands.models.tracking import dagster_ui_url, mlflow_ui_url
from sands.settings import SandsPaths, is_uri

__all__ = [
    "LakeResource",
    "LandingZoneResource",
    "OnlineStoreResource",
    "RegistryResource",
    "WarehouseResource",
    "build_resources",
]


def _online_store(env: dict[str, str], paths: SandsPaths) -> OnlineStoreResource:
    # Redis whenever a URL is given (production requires one); otherwise the SQLite file.
    if env.get("SANDS_REDIS_URL"):
        return OnlineStoreResource(backend="redis", redis_url=env["SANDS_REDIS_URL"])
    return OnlineStoreResource(backend="sqlite", sqlite_path=paths.online_db)


def _registry(env: dict[str, str], paths: SandsPaths) -> RegistryResource:
    # A tracking server whenever one is named (production requires one); otherwise SQLite files.
    # Links: SANDS_MLFLOW_UI_URL and SANDS_DAGSTER_URL, else the local UIs (sands.models.tracking).
    tracking_uri = env.get("SANDS_MLFLOW_TRACKING_URI")
    common = {
        "lake_root": paths.lake,
        "storage_options": paths.storage_options,
        "reports_dir": paths.reports,
        "mlflow_ui_url": mlflow_ui_url(env, tracking_uri),
        "dagster_ui_url": dagster_ui_url(env),
    }
    if tracking_uri:
        return RegistryResource(tracking_uri=tracking_uri, **common)
    return RegistryResource(
        tracking_uri=paths.mlflow_tracking_uri,
        artifact_location=paths.mlflow_artifacts,
        **common,
    )


def build_resources(env: dict[str, str] | None = None) -> dict[str, object]:
    """Resources for `SANDS_ENV` (`embedded`, the default, or `production`) and `SANDS_ENGINE`
    (`duckdb`, the default, or `spark`)."""
    env = dict(os.environ if env is None else env)
    paths = SandsPaths.from_env(env)
    mode = env.get("SANDS_ENV", "embedded")
    if mode == "production":
        needed = ("SANDS_LANDING_URI", "SANDS_LAKE_URI")
        missing = [v for v in needed if not is_uri(env.get(v, ""))]
        missing += [v for v in ("SANDS_REDIS_URL", "SANDS_MLFLOW_TRACKING_URI") if not env.get(v)]
        if missing:
            raise ValueError(
                f"SANDS_ENV=production needs object-store URIs in SANDS_LANDING_URI and "
                f"SANDS_LAKE_URI, a Redis URL in SANDS_REDIS_URL and an MLflow server in "
                f"SANDS_MLFLOW_TRACKING_URI; missing: {', '.join(missing)}"
            )
    elif mode != "embedded":
        raise ValueError(f"SANDS_ENV must be 'embedded' or 'production', not {mode!r}")
    else:
        paths.ensure_local_dirs()
    engine = env.get("SANDS_ENGINE", "duckdb")
    if engine not in ("duckdb", "spark"):
        raise ValueError(f"SANDS_ENGINE must be 'duckdb' or 'spark', not {engine!r}")
    warehouse = WarehouseResource(
        path=paths.warehouse_db,
        engine=engine,
        spark_catalog=paths.spark_catalog,
        spark_models=paths.spark_models,
    )
    registry = _registry(env, paths)
    return {
        "landing": LandingZoneResource(root=paths.landing, storage_options=paths.storage_options),
        "lake": LakeResource(root=paths.lake, storage_options=paths.storage_options),
        "warehouse": warehouse,
        "online": _online_store(env, paths),
        "registry": registry,
        # dagster-mlflow's run per Dagster run, in the registry's store and experiment.
        "mlflow": mlflow_resource(
            registry.tracking_uri,
            registry.experiment,
            registry.artifact_location,
            registry.dagster_ui_url,
        ),
        "dbt": dbt_resource(engine),
    }
