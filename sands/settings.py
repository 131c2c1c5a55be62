"""Where Shifting Sands keeps its state: one root (`SANDS_HOME`) and the URIs derived from it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

DEFAULT_HOME = "./.sands"
PARTITIONS_START_VAR = "SANDS_PARTITIONS_START"
POSITIVE_EVENTS_VAR = "SANDS_POSITIVE_EVENTS"

# Object-store settings are read from the conventional AWS variables so that the same
# values drive delta-rs, fsspec/s3fs and boto3 alike.
_STORAGE_ENV = {
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN": "AWS_SESSION_TOKEN",
    "AWS_REGION": "AWS_REGION",
    "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP": "AWS_ALLOW_HTTP",
}


def is_uri(location: str) -> bool:
    """True for `scheme://...` locations (object stores), False for local paths."""
    return "://" in location and not location.startswith("file://")


def join(base: str, *parts: str) -> str:
    """Join path segments onto a local path or an object-store URI."""
    if is_uri(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(base, *parts))


def storage_options_from_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """Object-store options (credentials, endpoint) taken from the environment."""
    env = os.environ if env is None else env
    options = {key: env[var] for key, var in _STORAGE_ENV.items() if env.get(var)}
    endpoint = options.get("AWS_ENDPOINT_URL", "")
    if endpoint.startswith("http://"):
        options.setdefault("AWS_ALLOW_HTTP", "true")
    return options


class SettingError(ValueError):
    """A setting that cannot be used; the message is one line naming the variable and the fix."""


@dataclass(frozen=True)
class SandsPaths:
    """Every location the platform writes to, resolved from `SANDS_HOME` and overrides."""

    home: str
    landing: str
    lake: str
    storage_options: dict[str, str] = field(default_factory=dict)

    @property
    def warehouse(self) -> str:
        return str(Path(self.home, "warehouse"))

    @property
    def warehouse_db(self) -> str:
        """The DuckDB file dbt builds the transform models into."""
        return str(Path(self.warehouse, "sands.duckdb"))

    @property
    def spark_catalog(self) -> str:
        """Spark's catalog (metastore) for the dbt models when the engine is Spark."""
        return str(Path(self.home, "spark"))

    @property
    def spark_models(self) -> str:
        """Where Spark writes the dbt models, as Delta tables (`<root>/<model>`)."""
        return join(self.lake, "dbt")

    @property
    def online_db(self) -> str:
        """The embedded online feature store (SQLite)."""
        return str(Path(self.home, "online", "features.sqlite"))

    @property
    def mlflow(self) -> str:
        return str(Path(self.home, "mlflow"))

    @property
    def mlflow_tracking_uri(self) -> str:
        """The embedded MLflow tracking and registry store (SQLite)."""
        return f"sqlite:///{Path(self.mlflow, 'mlflow.db')}"

    @property
    def mlflow_artifacts(self) -> str:
        """The embedded MLflow artifact root."""
        return Path(self.mlflow, "artifacts").as_uri()

    @property
    def reports(self) -> str:
        """HTML reports (evaluation, drift), also logged to MLflow."""
        return str(Path(self.home, "reports"))

    @property
    def dagster_home(self) -> str:
        return str(Path(self.home, "dagster"))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> SandsPaths:
        """Resolve paths from `SANDS_HOME`, `SANDS_LANDING_URI` and `SANDS_LAKE_URI`."""
        env = os.environ if env is None else env
        home = str(Path(env.get("SANDS_HOME", DEFAULT_HOME)).expanduser().resolve())
        landing = env.get("SANDS_LANDING_URI") or join(home, "landing")
        lake = env.get("SANDS_LAKE_URI") or join(home, "lake")
        return cls(
            home=home, landing=landing, lake=lake, storage_options=storage_options_from_env(env)
        )

    def ensure_local_dirs(self) -> None:
        """Create the local folders (object-store prefixes need no creation)."""
        for location in (
            self.home,
            self.landing,
            self.lake,
            self.warehouse,
            self.dagster_home,
            self.mlflow,
        ):
            if not is_uri(location):
                Path(location).mkdir(parents=True, exist_ok=True)

    def require_home(self, create: bool = True) -> None:
        """Fail in one line unless `SANDS_HOME` is a folder this process can write (created when
        missing and `create`): not a file, not a read-only or foreign folder."""
        home = Path(self.home)
        if home.exists() and not home.is_dir():
            raise SettingError(f"SANDS_HOME={home} is a file: expected a folder (or a new path)")
        if not create and not home.exists():
            raise SettingError(
                f"SANDS_HOME={home} does not exist: nothing has run there (check the path)"
            )
        try:
            home.mkdir(parents=True, exist_ok=True)
            # A probe: writing is what every command that runs jobs does.
            tempfile.TemporaryFile(dir=home).close()
        except OSError as error:
            raise SettingError(
                f"SANDS_HOME={home} is not a writable folder ({error.strerror or error}): "
                "expected a folder this user can create files in"
            ) from None


def partitions_start(env: dict[str, str] | None = None) -> date | None:
    """The first day of the daily partitions when pinned by `SANDS_PARTITIONS_START`, else None
    (the start is then derived from the landing zone: `sands.ingest.partitions`)."""
    env = os.environ if env is None else env
    value = env.get(PARTITIONS_START_VAR, "").strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise SettingError(
        f"{PARTITIONS_START_VAR}={value!r} is not a day: expected YYYY-MM-DD (e.g. 2019-03-01), "
        "or leave it unset to start the partitions at the first landing day"
    )


def positive_events_setting(
    known: tuple[str, ...], env: dict[str, str] | None = None
) -> tuple[str, ...] | None:
    """The event types `SANDS_POSITIVE_EVENTS` names (comma-separated, each one of `known`), or
    None when it is unset."""
    env = os.environ if env is None else env
    value = env.get(POSITIVE_EVENTS_VAR, "").strip()
    if not value:
        return None
    named = tuple(dict.fromkeys(v.strip().lower() for v in value.split(",") if v.strip()))
    if named and set(named) <= set(known):
        return named
    raise SettingError(
        f"{POSITIVE_EVENTS_VAR}={value!r}: expected event types from {', '.join(known)}, "
        "comma-separated (e.g. click,favourite,purchase), or leave it unset for favourite and "
        "purchase"
    )


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """`values` set in this process's environment while the block runs, restored after (dbt
    in process, and a replay's runs, read their settings from there)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
