"""How a run reads GesCom, from the app's configuration: RunConfig's defaults are the only ones."""

from __future__ import annotations

from datetime import timedelta

from app import load_config
from sync.services.run_config import CONFIG_KEYS, RunConfig


def test_an_empty_configuration_gives_the_defaults():
    assert RunConfig.from_mapping({}) == RunConfig()
    assert RunConfig.from_mapping(dict.fromkeys(CONFIG_KEYS)) == RunConfig()  # None: not set


def test_each_key_becomes_its_field_in_its_unit():
    config = RunConfig.from_mapping(
        {
            "SYNC_OVERLAP_SECONDS": 30,
            "SYNC_RECHECK_LIMIT": "50",
            "SYNC_RECHECK_AGE": 0,
            "SYNC_INITIAL_LOOKBACK_DAYS": 3,
            "SYNC_FULL_SCAN_INTERVAL": 90,
        }
    )
    assert config == RunConfig(
        overlap=timedelta(seconds=30),
        recheck_limit=50,
        recheck_age=timedelta(0),
        initial_lookback=timedelta(days=3),
        full_scan_interval=timedelta(seconds=90),
    )


def test_a_full_scan_interval_of_zero_means_never():
    assert RunConfig.from_mapping({"SYNC_FULL_SCAN_INTERVAL": 0}).full_scan_interval is None
    assert RunConfig.from_mapping({"SYNC_FULL_SCAN_INTERVAL": -1}).full_scan_interval is None


def test_the_app_config_holds_only_what_the_environment_sets(monkeypatch, tmp_path):
    for key in CONFIG_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SYNC_RECHECK_LIMIT", "25")
    monkeypatch.setenv("SYNC_OVERLAP_SECONDS", " ")  # blank: not set
    config = load_config(str(tmp_path))
    assert [key for key in CONFIG_KEYS if key in config] == ["SYNC_RECHECK_LIMIT"]
    assert RunConfig.from_mapping(config) == RunConfig(recheck_limit=25)
