"""The whole code location as one snapshot: assets, groups, partitions, checks, jobs, sensors."""

from dagster import AssetCheckKey, AssetKey, DefaultSensorStatus

from dagster_project.definitions import defs

GRAPH = defs.resolve_asset_graph()

ASSETS_BY_GROUP = {
    "ingestion": {"raw_interactions", "users", "artworks"},
    "transform": {
        "stg_interactions",
        "stg_users",
        "stg_artworks",
        "int_user_daily_activity",
        "int_artwork_daily_activity",
        "int_user_attribute_daily",
        "user_affinity",
        "user_feature_snapshots",
        "artwork_feature_snapshots",
    },
    "features": {"user_features", "artwork_features", "online_features"},
    "training": {"training_examples"},
    "monitoring": {"feature_drift", "champion_performance", "online_performance"},
    "models": {"user_segments", "artwork_similarity", "popularity_baseline", "ranker"},
    "evaluation": {"off_policy_estimate", "evaluation_report"},
    "deployment": {"deployed_ranker", "serving_candidates", "served_impressions"},
    "backtests": {"backtest_report"},
}
UNPARTITIONED = {
    "users",
    "artworks",
    "online_features",
    "training_examples",
    *ASSETS_BY_GROUP["models"],
    *ASSETS_BY_GROUP["monitoring"],
    *ASSETS_BY_GROUP["evaluation"],
    "deployed_ranker",
    "serving_candidates",
    "served_impressions",
    "backtest_report",
}


def parents(name: str) -> set[str]:
    return {k.to_user_string() for k in GRAPH.get(AssetKey(name)).parent_keys}


def test_the_asset_graph_is_one_lineage_from_landing_to_training_examples():
    by_group: dict[str, set[str]] = {}
    for key in GRAPH.get_all_asset_keys():
        by_group.setdefault(GRAPH.get(key).group_name, set()).add(key.to_user_string())
    assert by_group == ASSETS_BY_GROUP
    assert parents("stg_interactions") == {"raw_interactions"}
    # A profile is known from its first event when its signup is stamped later (an export date).
    assert parents("stg_users") == {"users", "raw_interactions"}
    assert parents("stg_artworks") == {"artworks", "raw_interactions"}
    assert parents("user_features") == {"user_feature_snapshots"}
    assert parents("online_features") == {"user_features", "artwork_features"}
    assert parents("training_examples") == {
        "raw_interactions",
        "artworks",
        "user_features",
        "artwork_features",
    }


def test_daily_data_is_partitioned_by_landing_day_and_backfills_run_as_one_run():
    for key in GRAPH.get_all_asset_keys():
        node = GRAPH.get(key)
        assert (node.partitions_def is None) == (key.to_user_string() in UNPARTITIONED)
    for name in ("user_feature_snapshots", "user_features", "artwork_features"):
        policy = GRAPH.get(AssetKey(name)).backfill_policy
        assert policy is not None and policy.max_partitions_per_run is None


def test_every_bronze_asset_carries_blocking_validation_checks():
    checks = GRAPH.asset_check_keys
    for name in ("raw_interactions", "users", "artworks"):
        assert AssetCheckKey(AssetKey(name), "rows_accounted_for") in checks
        assert AssetCheckKey(AssetKey(name), "reject_rate_within_budget") in checks
    for name in ("users", "artworks"):
        assert AssetCheckKey(AssetKey(name), "stored_rows_match_contract") in checks


def test_features_and_training_data_carry_blocking_checks_including_every_dbt_test():
    checks = {(k.asset_key.to_user_string(), k.name) for k in GRAPH.asset_check_keys}
    assert ("user_features", "log_holds_snapshot") in checks
    assert ("artwork_features", "log_holds_snapshot") in checks
    assert ("training_examples", "features_precede_labels") in checks
    dbt_checks = {c for c in checks if c[0] in ASSETS_BY_GROUP["transform"]}
    assert len(dbt_checks) == 36
    assert GRAPH.get_check_spec(
        AssetCheckKey(AssetKey("training_examples"), "features_precede_labels")
    ).blocking


def test_jobs_cover_each_way_the_pipeline_is_run():
    assert {j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")} == {
        "daily_ingestion",
        "reference_ingestion",
        "daily_pipeline",
        "feature_build",
        "training_data",
        "model_training",
        "online_quality",
        "champion_monitoring",
    }
    assert defs.resolve_job_def("daily_pipeline").partitions_def is not None


def test_sensors_run_by_default_landing_files_and_automation():
    landing = defs.resolve_sensor_def("landing_zone_sensor")
    assert landing.default_status == DefaultSensorStatus.RUNNING
    assert {job.name for job in landing.jobs} == {"daily_pipeline", "reference_ingestion"}
    automation = defs.resolve_sensor_def("sands_automation")
    assert automation.default_status == DefaultSensorStatus.RUNNING


def test_the_online_store_and_training_set_follow_new_features_automatically():
    for name in ("online_features", "training_examples"):
        condition = GRAPH.get(AssetKey(name)).automation_condition
        assert condition.get_label() == "after_upstream_updates"


def test_models_train_on_features_and_promotion_waits_for_a_blocking_gate():
    assert parents("user_segments") == {"user_features"}
    assert parents("artwork_similarity") == {"artworks", "raw_interactions"}
    # The window it serves is judged on the training set's newest labelled days.
    assert parents("popularity_baseline") == {"artwork_features", "training_examples"}
    assert parents("ranker") == {
        "training_examples",
        "user_segments",
        "feature_drift",
        "champion_performance",
        "online_performance",
    }
    # Off-policy estimates from the champion's served lists come before the gate that reads them.
    assert parents("off_policy_estimate") == {
        "ranker",
        "popularity_baseline",
        "served_impressions",
        "raw_interactions",
    }
    assert parents("evaluation_report") == {
        "ranker",
        "popularity_baseline",
        "user_segments",
        "off_policy_estimate",
    }
    assert parents("deployed_ranker") == {"evaluation_report"}
    gate = AssetCheckKey(AssetKey("evaluation_report"), "promotion_gate")
    assert GRAPH.get_check_spec(gate).blocking
    selected = defs.resolve_job_def("model_training").asset_layer.selected_asset_keys
    assert {k.to_user_string() for k in selected} == {
        *ASSETS_BY_GROUP["models"],
        *ASSETS_BY_GROUP["monitoring"],
        *ASSETS_BY_GROUP["evaluation"],
        "deployed_ranker",
        "serving_candidates",
    }


def test_serving_reads_candidates_and_its_log_feeds_online_performance():
    assert parents("serving_candidates") == {"raw_interactions", "artworks", "user_segments"}
    assert parents("online_performance") == {"served_impressions", "raw_interactions"}
    assert not GRAPH.get(AssetKey("served_impressions")).is_materializable  # the service writes it
    for name in ("serving_candidates", "online_performance"):
        assert GRAPH.get(AssetKey(name)).automation_condition.get_label() == (
            "after_upstream_updates"
        )


def test_monitoring_checks_exist_and_do_not_block_the_retrain_they_trigger():
    for asset, check in (
        ("feature_drift", "no_dataset_drift"),
        ("champion_performance", "champion_meets_objective"),
        ("champion_performance", "champion_is_fresh"),
        ("online_performance", "online_ctr_meets_objective"),
    ):
        key = AssetCheckKey(AssetKey(asset), check)
        assert key in GRAPH.asset_check_keys
        assert not GRAPH.get_check_spec(key).blocking


def test_the_whole_loop_is_automated_with_named_conditions():
    labels = {
        name: GRAPH.get(AssetKey(name)).automation_condition.get_label()
        for name in (
            "feature_drift",
            "champion_performance",
            "user_segments",
            "artwork_similarity",
            "popularity_baseline",
            "ranker",
            "off_policy_estimate",
            "evaluation_report",
            "deployed_ranker",
        )
    }
    assert labels["ranker"] == "retrain"
    assert labels["off_policy_estimate"] == "after ranker updates"
    assert labels["evaluation_report"] == "after off_policy_estimate updates"
    assert labels["deployed_ranker"] == "after evaluation_report updates"
    assert {labels[n] for n in ("feature_drift", "champion_performance", "user_segments")} == {
        "after_upstream_updates"
    }


def test_freshness_policies_on_bronze_features_and_the_champion():
    for name in ("raw_interactions", "users", "artworks", "user_features", "artwork_features"):
        assert GRAPH.get(AssetKey(name)).freshness_policy.fail_window.to_timedelta().days == 1
    champion = GRAPH.get(AssetKey("deployed_ranker")).freshness_policy
    assert champion.fail_window.to_timedelta().days == 8
