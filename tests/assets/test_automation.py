"""The online store and the training set follow new feature partitions by themselves."""

from dagster import AssetKey, AssetMaterialization, DagsterInstance, evaluate_automation_conditions

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
