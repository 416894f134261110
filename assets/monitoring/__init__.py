"""Monitoring: Evidently drift of each scored day and delayed-label quality, as assets with checks."""
