"""The model registry: ranker versions in MLflow, the `champion`/`challenger` aliases, and a
Delta log of every champion change (who, when, why) that rollback walks back through.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import mlflow
import pandas as pd
import pyarrow as pa
import xgboost as xgb
from deltalake import write_deltalake
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.protos.databricks_pb2 import ALREADY_EXISTS, RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking._tracking_service import utils as tracking_utils
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

from sands.lake import delta
from sands.models import tracking
from sands.models.aliases import CHALLENGER, CHAMPION, CHAMPION_POLICY, SERVING_POLICIES
from sands.models.ranking import RankerModel, RankerSpec
from sands.models.tags import (
    CANARY_TAG,
    CANARY_VERDICT_TAG,
    CHAMPION_SINCE_TAG,
    DIGEST_TAG,
    MODEL_VERSION_TAG,
    PARENT_RUN_TAG,
    POLICY_TAG,
    REFIT_OF_TAG,
    REUSED_VERSION_TAG,
)

SPEC_KEY = "sands_spec"
CANARY_ACTION = "canary"
POLICY_ACTION = "serving_policy"
# Champion changes pushed by promotions and popped by rollbacks.
PUSHES = ("promote", "gate_promote")
HISTORY_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),
        ("action", pa.string()),
        ("version", pa.int64()),
        ("previous", pa.int64()),
        ("actor", pa.string()),
        ("reason", pa.string()),
    ]
)


def model_digest(model: RankerModel) -> str:
    """A hash of the trees and the spec: equal digests score every row identically."""
    return hashlib.sha256(model.scoring_bytes()).hexdigest()


class RegistryError(RuntimeError):
    """A registry operation that cannot be done as asked; callers branch on the subclasses."""


class UnknownVersion(RegistryError, LookupError):
    """No such registered version."""


class InvalidSetting(RegistryError, ValueError):
    """A serving setting out of range (canary share, serving policy)."""


class NoChallenger(RegistryError):
    """Canary traffic asked for while no challenger is registered."""


class NothingToRollBack(RegistryError):
    """A rollback with no earlier, different champion to go back to."""


@dataclass(frozen=True)
class ChampionChange:
    """One entry of the champion history."""

    ts: datetime
    action: str
    version: int
    previous: int | None
    actor: str
    reason: str


class LoggedRanker(NamedTuple):
    """A registered version and the MLflow run that trained it this time: the version's own run,
    or, for a model byte-identical to an earlier version, a run without a model that says so."""

    version: ModelVersion
    run_id: str


class ChildRun(NamedTuple):
    """A run logged under a parent, and the artifact URIs of its files."""

    run_id: str
    artifacts: dict[str, str]


class ServingState(NamedTuple):
    """What serving polls, in one registry read."""

    aliases: dict[str, int]
    canary_share: float
    policy: str = CHAMPION_POLICY


class Registry:
    """MLflow tracking and registry for one registered ranker, plus its champion history."""

    def __init__(
        self,
        tracking_uri: str,
        history_uri: str,
        model_name: str = "sands-ranker",
        experiment: str = "shifting-sands",
        artifact_location: str | None = None,
        storage_options: dict[str, str] | None = None,
        ui_url: str | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        # Where a browser finds the MLflow UI (see `sands.models.tracking.mlflow_ui_url`).
        self.ui_url = (ui_url or tracking.mlflow_ui_url({}, tracking_uri)).rstrip("/")
        self.history_uri = history_uri
        self.model_name = model_name
        self.experiment = experiment
        self.artifact_location = artifact_location
        self.storage_options = storage_options or {}
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    @contextlib.contextmanager
    def _fluent(self) -> Iterator[None]:
        # mlflow's log_model is fluent-only: point the global URIs here for the duration. The raw
        # previous value (None when unset): restoring get_tracking_uri()'s default would export
        # MLFLOW_TRACKING_URI=sqlite:///mlflow.db and litter the working directory.
        previous = tracking_utils._tracking_uri
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(previous)

    def experiment_id(self) -> str:
        """The experiment's id, created (with the configured artifact location) on first use."""
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(self.experiment, self.artifact_location)

    # -- versions -------------------------------------------------------------------------
    def register_ranker(
        self,
        model: RankerModel,
        example: pd.DataFrame,
        params: dict[str, object],
        metrics: dict[str, float],
        tags: dict[str, str],
        run_name: str,
        parent_run_id: str | None = None,
    ) -> ModelVersion:
        """Log the ranker as a new registered version with lineage tags; it becomes challenger.

        A model byte-identical to a registered version (same data, config and seed) is not
        registered twice: that version becomes challenger again, so reruns are idempotent.
        """
        logged = self.log_ranker(model, example, params, metrics, tags, run_name, parent_run_id)
        return logged.version

    def log_ranker(
        self,
        model: RankerModel,
        example: pd.DataFrame,
        params: dict[str, object],
        metrics: dict[str, float],
        tags: dict[str, str],
        run_name: str,
        parent_run_id: str | None = None,
        alias: str | None = CHALLENGER,
    ) -> LoggedRanker:
        """`register_ranker`, and the run that logged it: a child of `parent_run_id` if given.

        A model identical to a registered version reuses that version; under a parent it still
        logs a run there (params, metrics, tags, no model) tagged with the version it reused, so
        every training run's parent holds its ranker run. The version takes `alias` (a refit
        takes none: the gate's alias stays on the version it judged).
        """
        digest = model_digest(model)
        for existing in self.versions():
            if existing.tags.get(DIGEST_TAG) == digest:
                if alias:
                    self.client.set_registered_model_alias(
                        self.model_name, alias, str(existing.version)
                    )
                if parent_run_id is None:
                    return LoggedRanker(existing, existing.run_id)
                reused = {**tags, REUSED_VERSION_TAG: str(existing.version)}
                child = self.log_child_run(
                    parent_run_id,
                    f"{run_name} (v{existing.version} again)",
                    {},
                    metrics,
                    reused,
                    params,
                )
                return LoggedRanker(existing, child.run_id)
        tags = {**tags, DIGEST_TAG: digest}
        # The signature is the columns' types: a few rows tell them as well as every row.
        head = example.head(1_000)
        signature = infer_signature(head, model.booster.inplace_predict(head))
        complete = example.dropna()
        sample = (complete if len(complete) else example.fillna(0)).head(5)
        with (
            self._fluent(),
            # Nested under the parent, which the Dagster step's mlflow resource holds active.
            mlflow.start_run(
                experiment_id=self.experiment_id(),
                run_name=run_name,
                nested=parent_run_id is not None,
                parent_run_id=parent_run_id,
            ) as run,
        ):
            mlflow.log_params(params)
            mlflow.log_metrics({k: v for k, v in metrics.items() if not math.isnan(v)})
            mlflow.set_tags(tags)
            info = mlflow.xgboost.log_model(
                model.booster,
                name="ranker",
                signature=signature,
                input_example=sample,
                metadata={SPEC_KEY: model.spec.to_json()},
                pip_requirements=[f"xgboost=={xgb.__version__}"],
                model_format="ubj",
            )
            # Inside `_fluent()`: the registry store reads the logged model back by the
            # process-wide tracking URI.
            version = self._register(info.model_uri, info.model_id)
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, version, key, value)
        self.client.set_tag(run.info.run_id, MODEL_VERSION_TAG, version)
        if alias:
            self.client.set_registered_model_alias(self.model_name, alias, version)
        registered = self.client.get_model_version(self.model_name, version)
        return LoggedRanker(registered, run.info.run_id)

    def _register(self, model_uri: str, model_id: str | None) -> str:
        """A new version of the registered model holding the logged model, created through the
        client: `log_model(registered_model_name=...)` prints two lines to stderr per retrain,
        through every CLI's progress."""
        try:
            self.client.create_registered_model(self.model_name)
        except MlflowException as error:
            # The same two codes MLflow's own registration accepts (the second from registries
            # other than its SQL and REST stores).
            if error.error_code not in (
                ErrorCode.Name(RESOURCE_ALREADY_EXISTS),
                ErrorCode.Name(ALREADY_EXISTS),
            ):
                raise
        # The store takes the version's run from the logged model, as the fluent path does.
        created = self.client.create_model_version(self.model_name, model_uri, model_id=model_id)
        if model_id is not None:
            # What the fluent path also writes (a remote server writes it itself): the logged
            # model's link to its version in the MLflow UI. The model was logged just now, so
            # this version is its only one.
            link = [{"name": created.name, "version": created.version}]
            self.client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(link)})
        return str(created.version)

    def version(self, version: int) -> ModelVersion:
        """A registered version, or UnknownVersion when there is none."""
        try:
            return self.client.get_model_version(self.model_name, str(version))
        except MlflowException as error:
            raise UnknownVersion(f"{self.model_name} has no version {version}") from error

    def aliased(self, alias: str) -> ModelVersion | None:
        """The version holding `alias`, or None."""
        try:
            return self.client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException:
            return None

    def aliases(self) -> dict[str, int]:
        """Every alias of the registered model and the version it points at."""
        return self.serving_state()[0]

    def serving_state(self) -> ServingState:
        """The aliases, the canary share and the serving policy in one registry read."""
        try:
            found = self.client.get_registered_model(self.model_name)
        except MlflowException:
            return ServingState({}, 0.0)
        aliases = {alias: int(version) for alias, version in found.aliases.items()}
        policy = found.tags.get(POLICY_TAG, CHAMPION_POLICY)
        return ServingState(aliases, float(found.tags.get(CANARY_TAG, 0.0)), policy)

    def serving_policy(self) -> str:
        """What the champion arm serves: `champion` or `popularity` (see `sands.models.aliases`)."""
        return self.serving_state().policy

    def set_serving_policy(self, policy: str, actor: str, reason: str) -> ChampionChange | None:
        """Switch what the champion arm serves, and log it; None when it already serves that."""
        if policy not in SERVING_POLICIES:
            raise InvalidSetting(
                f"serving policy must be one of {SERVING_POLICIES}, not {policy!r}"
            )
        if self.serving_policy() == policy:
            return None
        self.client.set_registered_model_tag(self.model_name, POLICY_TAG, policy)
        champion = self.champion_version()
        change = ChampionChange(
            datetime.now(UTC), f"{POLICY_ACTION}_{policy}", champion or 0, champion, actor, reason
        )
        self._record(change)
        return change

    def canary_share(self) -> float:
        """The share of users the challenger serves (0 when no canary runs)."""
        return self.serving_state()[1]

    def set_canary_share(self, share: float, actor: str, reason: str) -> ChampionChange:
        """Route `share` of users (by a stable hash of their id) to the challenger, and log it."""
        if not 0.0 <= share <= 1.0:
            raise InvalidSetting(f"canary share must be within [0, 1], not {share}")
        challenger = self.aliased(CHALLENGER)
        if challenger is None and share > 0:
            raise NoChallenger("no challenger to send canary traffic to")
        self.client.set_registered_model_tag(self.model_name, CANARY_TAG, repr(float(share)))
        change = ChampionChange(
            datetime.now(UTC),
            CANARY_ACTION,
            int(challenger.version) if challenger else 0,
            self.champion_version(),
            actor,
            f"canary share {share:g}: {reason}",
        )
        self._record(change)
        return change

    def record_canary_verdict(
        self, version: int, verdict: str, actor: str, reason: str
    ) -> ChampionChange | None:
        """Tag the challenger with the canary's verdict and log it once per version and verdict;
        None when it was already recorded."""
        if self.version(version).tags.get(CANARY_VERDICT_TAG) == verdict:
            return None
        self.tag_version(version, {CANARY_VERDICT_TAG: verdict})
        change = ChampionChange(
            datetime.now(UTC),
            f"{CANARY_ACTION}_{verdict}",
            version,
            self.champion_version(),
            actor,
            reason,
        )
        self._record(change)
        return change

    def versions(self) -> list[ModelVersion]:
        """Every registered version, oldest first."""
        found = self.client.search_model_versions(f"name = '{self.model_name}'")
        return sorted(found, key=lambda v: int(v.version))

    def judged_version(self, version: int) -> int:
        """The version the gate judged for `version`: the one it refits, or itself."""
        return int(self.version(version).tags.get(REFIT_OF_TAG, version))

    def load_ranker(self, version: int) -> RankerModel:
        """The booster and spec of a registered version."""
        uri = f"models:/{self.model_name}/{version}"
        with self._fluent():
            booster = mlflow.xgboost.load_model(uri)
            spec = mlflow.models.get_model_info(uri).metadata[SPEC_KEY]
        return RankerModel(booster=booster, spec=RankerSpec.from_json(spec))

    def model_info(self, version: int) -> mlflow.models.model.ModelInfo:
        """MLflow's description of the logged model: signature, input example, flavours."""
        with self._fluent():
            return mlflow.models.get_model_info(f"models:/{self.model_name}/{version}")

    def tag_version(self, version: int, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, str(version), key, value)

    def log_child_run(
        self,
        parent_run_id: str | None,
        run_name: str,
        files: dict[str, str],
        metrics: dict[str, float],
        tags: dict[str, str],
        params: dict[str, object] | None = None,
    ) -> ChildRun:
        """A finished run under `parent_run_id` (top level when None) with files (artifact
        folder -> local path), finite metrics, tags and params."""
        parent = {PARENT_RUN_TAG: parent_run_id} if parent_run_id else {}
        run = self.client.create_run(
            self.experiment_id(), run_name=run_name, tags={**tags, **parent}
        )
        run_id = run.info.run_id
        uris = {}
        for folder, path in files.items():
            self.client.log_artifact(run_id, path, folder)
            uris[folder] = f"{run.info.artifact_uri}/{folder}/{path.rsplit('/', 1)[-1]}"
        finite = [
            Metric(key, float(value), int(time.time() * 1000), 0)
            for key, value in metrics.items()
            if value is not None and not math.isnan(value)
        ]
        logged = [Param(key, str(value)) for key, value in (params or {}).items()]
        self.client.log_batch(run_id, metrics=finite, params=logged)
        self.client.set_terminated(run_id)
        return ChildRun(run_id, uris)

    def tag_run(self, run_id: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)

    # -- links ---------------------------------------------------------------------------
    def ui_link(self, version: int) -> str:
        """A browser link to the version in the MLflow UI."""
        return tracking.model_version_url(self.ui_url, self.model_name, version)

    def run_url(self, run_id: str) -> str:
        """A browser link to a run in the MLflow UI."""
        run = self.client.get_run(run_id)
        return tracking.run_url(self.ui_url, run.info.experiment_id, run_id)

    def run_link(self, version: int) -> str:
        """A browser link to the run that logged the version."""
        return self.run_url(self.version(version).run_id)

    # -- champion ------------------------------------------------------------------------
    def champion_version(self) -> int | None:
        found = self.aliased(CHAMPION)
        return int(found.version) if found else None

    def history(self) -> list[ChampionChange]:
        """Every champion change, oldest first."""
        table = delta.open_table(self.history_uri, self.storage_options)
        if table is None:
            return []
        rows = table.to_pyarrow_dataset().to_table().sort_by("ts").to_pylist()
        return [ChampionChange(**row) for row in rows]

    def _record(self, change: ChampionChange) -> None:
        delta.ensure_table(self.history_uri, HISTORY_SCHEMA, None, self.storage_options)
        row = {k: [v] for k, v in change.__dict__.items()}
        write_deltalake(
            self.history_uri,
            pa.table(row, schema=HISTORY_SCHEMA),
            mode="append",
            storage_options=self.storage_options or None,
        )

    def _move_champion(self, version: int, action: str, actor: str, reason: str) -> ChampionChange:
        previous = self.champion_version()
        self.client.set_registered_model_alias(self.model_name, CHAMPION, str(version))
        now = datetime.now(UTC)
        self.tag_version(version, {CHAMPION_SINCE_TAG: now.isoformat()})
        change = ChampionChange(now, action, version, previous, actor, reason)
        self._record(change)
        if action in PUSHES:
            # A champion that passed the gate (or a human's choice) serves again.
            self.set_serving_policy(CHAMPION_POLICY, actor, f"v{version} became champion")
        return change

    def promote(
        self, version: int, actor: str, reason: str, action: str = "promote"
    ) -> ChampionChange | None:
        """Make `version` the champion and log who did it and why; None (nothing logged) when
        it already is the champion."""
        self.version(version)
        if self.champion_version() == version:
            return None
        return self._move_champion(version, action, actor, reason)

    def record_rejection(self, version: int, actor: str, reason: str) -> ChampionChange:
        """Log that `version` was considered and kept out; the champion does not move."""
        self.version(version)
        current = self.champion_version()
        change = ChampionChange(datetime.now(UTC), "gate_reject", version, current, actor, reason)
        self._record(change)
        return change

    def champion_stack(self) -> list[int]:
        """Champions in the order they were pushed, rollbacks popped back to the version they
        restored: the last is current, and no two neighbours are the same version (a history
        that pushed one twice in a row, before promote refused to, counts it once)."""
        stack: list[int] = []
        for change in self.history():
            if change.action in PUSHES and stack[-1:] != [change.version]:
                stack.append(change.version)
            elif change.action == "rollback":
                while stack and stack[-1] != change.version:
                    stack.pop()
                stack = stack or [change.version]
        return stack

    def rollback(self, actor: str, reason: str) -> ChampionChange:
        """Give the champion alias back to the previous, different, champion, and log it."""
        stack = self.champion_stack()
        if len(stack) < 2:
            first = f": v{stack[0]} was the first" if stack else ""
            raise NothingToRollBack(f"no earlier champion to roll back to{first}")
        return self._move_champion(stack[-2], "rollback", actor, reason)
