"""Declarative automation, evaluated tick by tick: followers of new features, and the ranker's
retraining triggers with their guards."""

from datetime import UTC, datetime, timedelta

from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DagsterRunStatus,
    evaluate_automation_conditions,
)
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from dagster_project.definitions import build_defs

FOLLOWERS = {AssetKey("online_features"), AssetKey("training_examples")}


def requested(result) -> set[AssetKey]:
    return {key for key in FOLLOWERS if result.get_num_requested(key)}


def test_one_new_feature_partition_requests_the_followers_once(paths):
    defs = build_defs()
    with DagsterInstance.ephemeral() as instance:
        first = evaluate_automation_conditions(defs=defs, instance=instance)
        assert requested(first) == set()
        instance.report_runless_asset_event(
            AssetMaterialization("user_features", partition="2026-09-02")
        )
        second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        assert requested(second) == FOLLOWERS
        third = evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
        assert requested(third) == set()


def test_new_bronze_data_alone_refreshes_the_training_set_but_not_the_online_store(paths):
    defs = build_defs()
    with DagsterInstance.ephemeral() as instance:
        first = evaluate_automation_conditions(defs=defs, instance=instance)
        instance.report_runless_asset_event(AssetMaterialization("artworks"))
        second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        assert requested(second) == {AssetKey("training_examples")}


# -- the ranker's retraining triggers ------------------------------------------------------------

MONDAY = datetime(2026, 9, 7, 1, tzinfo=UTC)  # 01:00, before the weekly 03:00 tick
RANKER = AssetKey("ranker")


class Ticks:
    """Automation evaluations of the real code location against one instance, clock in hand."""

    def __init__(self, instance: DagsterInstance, defs=None) -> None:
        self.defs = defs or build_defs()
        self.instance = instance
        self.cursor = None
        self.now = MONDAY

    def tick(self, hours: float = 0.1) -> bool:
        """Advance the clock, evaluate, and say whether the ranker was requested."""
        self.now += timedelta(hours=hours)
        result = evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.cursor, evaluation_time=self.now
        )
        self.cursor = result.cursor
        return bool(result.get_num_requested(RANKER))

    def retrained(self) -> None:
        self.instance.report_runless_asset_event(AssetMaterialization("ranker"))

    def new_training_set(self, version: str) -> None:
        self.instance.report_runless_asset_event(
            AssetMaterialization("training_examples", tags={DATA_VERSION_TAG: version})
        )

    def check(self, asset: str, name: str, passed: bool) -> None:
        self.instance.report_runless_asset_event(
            AssetCheckEvaluation(asset_key=AssetKey(asset), check_name=name, passed=passed)
        )


def test_nothing_retrains_without_a_trigger(paths):
    with DagsterInstance.ephemeral() as instance:
        ticks = Ticks(instance)
        assert not ticks.tick() and not ticks.tick()


def test_changed_training_data_retrains_and_unchanged_data_does_not(paths):
    with DagsterInstance.ephemeral() as instance:
        ticks = Ticks(instance)
        ticks.tick()
        ticks.new_training_set("v1")
        assert ticks.tick()
        ticks.retrained()
        assert not ticks.tick(hours=24)
        ticks.new_training_set("v1")  # rebuilt, same data version
        assert not ticks.tick()


def test_a_burst_of_triggers_is_one_retrain_and_the_cooldown_holds_the_next(paths):
    with DagsterInstance.ephemeral() as instance:
        ticks = Ticks(instance)
        ticks.tick()
        ticks.new_training_set("v1")
        ticks.check("feature_drift", "no_dataset_drift", passed=False)
        ticks.check("champion_performance", "champion_meets_objective", passed=False)
        assert ticks.tick()
        assert not ticks.tick()  # the burst was handled by that one request
        ticks.retrained()
        ticks.new_training_set("v2")
        assert not ticks.tick()  # retrained today: wait for the next UTC day
        assert not ticks.tick(hours=10)
        assert ticks.tick(hours=14)  # past midnight: the held trigger fires once
        assert not ticks.tick()


def test_drift_degradation_and_staleness_each_trigger_and_passing_checks_do_not(paths):
    for asset, check in (
        ("feature_drift", "no_dataset_drift"),
        ("champion_performance", "champion_meets_objective"),
        ("champion_performance", "champion_is_fresh"),
        ("online_performance", "online_ctr_meets_objective"),
    ):
        with DagsterInstance.ephemeral() as instance:
            ticks = Ticks(instance)
            ticks.tick()
            ticks.check(asset, check, passed=True)
            assert not ticks.tick(), check
            ticks.check(asset, check, passed=False)
            assert ticks.tick(), check


def test_the_weekly_schedule_retrains_once_on_monday(paths):
    with DagsterInstance.ephemeral() as instance:
        ticks = Ticks(instance)
        ticks.tick()
        assert not ticks.tick(hours=1)  # 02:12
        assert ticks.tick(hours=1)  # 03:12: the tick passed
        assert not ticks.tick(hours=1)


def test_evaluation_and_promotion_follow_a_retrain_in_the_same_tick(paths):
    with DagsterInstance.ephemeral() as instance:
        ticks = Ticks(instance)
        ticks.tick()
        ticks.new_training_set("v1")
        ticks.now += timedelta(minutes=5)
        result = evaluate_automation_conditions(
            defs=ticks.defs, instance=instance, cursor=ticks.cursor, evaluation_time=ticks.now
        )
        wanted = {
            RANKER,
            AssetKey("off_policy_estimate"),
            AssetKey("evaluation_report"),
            AssetKey("deployed_ranker"),
        }
        assert {k for k in wanted if result.get_num_requested(k)} == wanted


def test_no_retrain_while_a_ranker_run_is_in_progress_the_trigger_waits(paths):
    with DagsterInstance.ephemeral() as instance:
        ticks = Ticks(instance)
        ticks.tick()
        job = ticks.defs.resolve_job_def("model_training")
        run = instance.create_run_for_job(
            job, status=DagsterRunStatus.STARTED, asset_selection=frozenset({RANKER})
        )
        ticks.check("feature_drift", "no_dataset_drift", passed=False)
        assert not ticks.tick()
        instance.report_run_canceled(run)
        assert ticks.tick()
