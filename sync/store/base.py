"""Transitional: the settings storage moved to sync/store/settings.py, the locks to sync/store/locks.py.

Kept so that imports not yet updated keep working; removed once every importer uses the new modules.
"""
from sync.store.locks import acquire_lock, extend_lock, holder_is_dead, lock_holder, ping_store, release_lock  # noqa: F401
from sync.store.settings import SETTINGS_ID, VersionConflict, current_settings, load_settings, save_settings  # noqa: F401
