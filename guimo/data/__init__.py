"""Data sources shared by scenarios: downloads with checksum and cache, fingerprints."""
