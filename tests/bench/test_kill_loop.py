from bench import kill_loop


def test_three_kills_with_reruns_leave_the_tables_a_clean_run_leaves(tmp_path):
    result = kill_loop.run(tmp_path, kills=3, events_per_day=200, seed=3, days=1)
    assert sum(result.killed_in.values()) == 3
    after, clean = result.after, result.clean
    assert after.unreadable == [] and after.staging_files == []
    assert after.duplicate_event_ids == 0 and after.duplicate_feature_rows == 0
    assert after.rows == clean.rows and after.event_ids == clean.event_ids
    # The hostile first day: one unreadable file and one damaged line pair are in quarantine.
    assert clean.rows["bronze/interactions"] > 0 and clean.rows["quarantine/interactions"] >= 3
    assert result.ok
