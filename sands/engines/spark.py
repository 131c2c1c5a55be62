"""Apache Spark with Delta Lake (delta-spark): the scale-out engine's session, configured once.

`configure_spark_with_delta_pip` asks Spark to resolve `io.delta` jars from Maven Central when a
session starts; they are cached in an Ivy folder (`SANDS_SPARK_IVY`, default
`~/.cache/sands/ivy`), so only the first session downloads. Offline, point `SANDS_SPARK_JARS` at
pre-seeded jars (comma-separated paths, passed as `spark.jars`) and nothing is resolved.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_IVY = str(Path("~/.cache/sands/ivy").expanduser())
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    # Timestamps are UTC instants everywhere; naive ones (timestamp_ntz) are UTC wall time.
    "spark.sql.session.timeZone": "UTC",
}
# Local mode on a laptop or CI: no UI port, no progress bars in the logs, small shuffles.
# One partition per core: local mode has no executors to spread over, and Delta's default of 50
# partitions for rebuilding a table's snapshot made each small commit wait on 50 tiny tasks
# (the engine parity build took 349 s with the defaults, 221 s with this).
LOCAL_PARTITIONS = str(max(2, os.cpu_count() or 2))
LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": LOCAL_PARTITIONS,
    "spark.databricks.delta.snapshotPartitions": LOCAL_PARTITIONS,
    # Local mode runs tasks in the driver JVM; Spark's 1 GB default is too small for real joins.
    "spark.driver.memory": "4g",
}


@dataclass(frozen=True)
class SparkSettings:
    """Where Spark runs and where its Delta jars come from."""

    # local[N], spark://host:7077, k8s://https://..., or sc://host:15002 (Spark Connect)
    master: str = "local[2]"
    app_name: str = "shifting-sands"
    ivy_dir: str = DEFAULT_IVY
    jars: tuple[str, ...] = ()  # offline: pre-seeded Delta jars instead of resolving them
    conf: dict[str, str] = field(default_factory=dict)
    # A persistent catalog (Hive metastore in embedded Derby) for dbt's schemas, views and tables;
    # None: Spark's in-memory catalog, enough for path-based reads and writes.
    catalog_dir: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> SparkSettings:
        """`SANDS_SPARK_MASTER`, `SANDS_SPARK_IVY`, `SANDS_SPARK_JARS`, `SANDS_SPARK_CATALOG` and
        `SANDS_SPARK_CONF` (`key=value` pairs, comma-separated, e.g. executor memory)."""
        env = os.environ if env is None else env
        jars = jar_paths(env.get("SANDS_SPARK_JARS", ""))
        pairs = [p.split("=", 1) for p in env.get("SANDS_SPARK_CONF", "").split(",") if "=" in p]
        return cls(
            master=env.get("SANDS_SPARK_MASTER", cls.master),
            ivy_dir=env.get("SANDS_SPARK_IVY", DEFAULT_IVY),
            jars=jars,
            catalog_dir=env.get("SANDS_SPARK_CATALOG") or None,
            conf={key.strip(): value.strip() for key, value in pairs},
        )

    def with_catalog(self, directory: str) -> SparkSettings:
        """The same settings with a persistent catalog in `directory`."""
        return replace(self, catalog_dir=directory)


def jar_paths(setting: str) -> tuple[str, ...]:
    """`SANDS_SPARK_JARS`: comma-separated jar paths, or one folder holding them."""
    entries = [j.strip() for j in setting.split(",") if j.strip()]
    if len(entries) == 1 and Path(entries[0]).is_dir():
        return tuple(str(p) for p in sorted(Path(entries[0]).glob("*.jar")))
    return tuple(entries)


def seed_jars(destination: str, settings: SparkSettings | None = None) -> list[Path]:
    """Resolve the Delta jars once (Maven Central, through the Ivy cache) and copy them into
    `destination`, for machines or images that must start Spark offline."""
    settings = replace(settings or SparkSettings.from_env(), jars=())
    spark_session(settings)  # resolves into the Ivy cache (a running session already has)
    folder = Path(destination)
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for jar in sorted(Path(settings.ivy_dir, "jars").glob("*.jar")):
        copied.append(Path(shutil.copy2(jar, folder / jar.name)))
    return copied


def catalog_conf(directory: str) -> dict[str, str]:
    """Hive metastore (embedded Derby) and managed-table warehouse under `directory`."""
    root = Path(directory).resolve()
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true"
        ),
        # Derby writes derby.log into the working directory unless told otherwise.
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={root}",
    }


def java_available() -> bool:
    """True when a JVM can be started (Spark needs one)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and Path(java_home, "bin", "java").exists():
        return True
    return any(Path(p, "java").exists() for p in os.environ.get("PATH", "").split(os.pathsep))


def spark_session(settings: SparkSettings | None = None) -> SparkSession:
    """A Spark session that reads and writes Delta tables (created, or the running one)."""
    from delta import configure_spark_with_delta_pip
    from pyspark.sql import SparkSession

    settings = settings or SparkSettings.from_env()
    if settings.master.startswith("sc://"):
        builder = SparkSession.builder.remote(settings.master)
    else:
        builder = SparkSession.builder.master(settings.master)
    builder = builder.appName(settings.app_name)
    conf = {**DELTA_CONF, **(LOCAL_CONF if settings.master.startswith("local") else {})}
    if settings.master.startswith("local"):
        # Python workers (UDFs, XGBoost tasks) run this interpreter (the venv), not whatever
        # `python3` is on PATH; pyspark reads only the environment for it.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if settings.catalog_dir:
        Path(settings.catalog_dir).mkdir(parents=True, exist_ok=True)
        conf.update(catalog_conf(settings.catalog_dir))
    for key, value in {**conf, **settings.conf}.items():
        builder = builder.config(key, value)
    if settings.jars:
        builder = builder.config("spark.jars", ",".join(settings.jars))
    else:
        Path(settings.ivy_dir).mkdir(parents=True, exist_ok=True)
        builder = configure_spark_with_delta_pip(builder.config("spark.jars.ivy", settings.ivy_dir))
    session = builder.getOrCreate()
    if not settings.master.startswith("sc://"):  # a Connect client has no SparkContext
        session.sparkContext.setLogLevel("ERROR")
    return session
