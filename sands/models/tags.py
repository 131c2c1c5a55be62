"""Every MLflow tag key the platform writes or reads, in one place: on runs, on model versions and
on the registered model. Renaming one changes recorded data: readers of older stores break."""

# On a model version: what it was trained on (lineage) and how.
TRAIN_CUTOFF_TAG = "sands.train_cutoff"
HOLDOUT_UNTIL_TAG = "sands.holdout_until"  # the last label day the ranker's holdout saw
SHUFFLED_LABELS_TAG = "sands.shuffled_labels"
TRAINING_EXAMPLES_VERSION_TAG = "sands.delta.training_examples"  # Delta versions trained on
USER_SEGMENTS_VERSION_TAG = "sands.delta.user_segments"
DBT_MANIFEST_TAG = "sands.dbt_manifest"
GIT_COMMIT_TAG = "sands.git_commit"
DIGEST_TAG = "sands.model_sha256"
# On a version refit on every label day once the gate passed the version it names: what serves.
REFIT_OF_TAG = "sands.refit_of"

# On a model version: the gate's verdict, its evaluation and its time as champion.
GATE_TAG = "sands.gate"  # passed | rejected
GATE_REFERENCE_TAG = "sands.gate.reference"
GATE_REASONS_TAG = "sands.gate.reasons"
EVAL_CHAMPION_VERSION_TAG = "sands.eval.champion_version"
EVALUATION_RUN_TAG = "sands.evaluation_run"  # its latest evaluation's run
CHAMPION_SINCE_TAG = "sands.champion_since"
CANARY_VERDICT_TAG = "sands.canary"  # better or worse than the champion online
OFF_POLICY_TAG = "sands.off_policy"  # the challenger's off-policy estimates (JSON)

# On the registered model, so every replica reads one value.
CANARY_TAG = "sands.canary_share"
POLICY_TAG = "sands.serving_policy"  # what the champion arm serves

# On runs.
MODEL_VERSION_TAG = "sands.model_version"  # on a child run: the version it trained or evaluated
REUSED_VERSION_TAG = "sands.reused_version"  # on a ranker run whose model was registered before
DECISION_TAG = "sands.decision"  # on a Dagster run's parent run: what deployment decided
CHAMPION_VERSION_TAG = "sands.champion_version"
PARENT_RUN_TAG = "mlflow.parentRunId"
# dagster-mlflow finds a Dagster run's MLflow run by this tag, newest first: only the parent may
# carry it, or a later step would resume a child. Children and versions carry `dagster.run_id`.
PARENT_LOOKUP_TAG = "dagster_run_id"
DAGSTER_RUN_ID_TAG = "dagster.run_id"
DAGSTER_RUN_URL_TAG = "dagster.run_url"
