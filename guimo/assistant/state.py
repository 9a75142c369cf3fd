"""Device states that persist between calls: one SQLite file per home, one transaction per change.

Why SQLite (stdlib ``sqlite3``) rather than a JSON file: a change to several devices ("turn off all
the lights") must land whole or not at all, a killed process must leave the last committed state
readable, and the server's threads (one home per tenant) may write while others read. WAL mode
gives readers that never block the writer; ``BEGIN IMMEDIATE`` takes the write lock before reading
the state it merges into, so two concurrent changes never lose each other; ``synchronous=FULL``
makes a commit durable when it returns.

A state file starts from the home's default states (home.toml ``state``). Devices added to
home.toml later are added with their defaults when the file is opened; rows of devices no longer in
the home are left alone and never returned.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from guimo.assistant.home import Home
from guimo.errors import GuimoError

_SCHEMA = "CREATE TABLE IF NOT EXISTS device_state (device TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL)"


class HomeState:
    """The persisted state of every device of ``home`` in the SQLite file ``db_path``."""

    def __init__(self, db_path: str | Path, home: Home):
        self.path = Path(db_path)
        self.home = home
        self._lock = threading.Lock()  # one connection shared by a server's threads, used one at a time
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except (sqlite3.DatabaseError, OSError) as e:
            raise GuimoError(f"{self.path}: not a usable device-state database ({e})") from None
        with self._transaction() as db:
            for device in home.devices.values():
                db.execute("INSERT OR IGNORE INTO device_state VALUES (?, ?, julianday('now'))",
                           (device.id, json.dumps(device.default)))
            # home.toml may have changed since the file was written (a narrower range, a colour less, a device of
            # another type under the same id): a stored value the device no longer takes returns to its default
            for device_id, text in db.execute("SELECT device, state FROM device_state").fetchall():
                if device_id in home.devices:
                    stored, fixed = json.loads(text), self._repaired(device_id, json.loads(text))
                    if fixed != stored:
                        db.execute("UPDATE device_state SET state = ? WHERE device = ?", (json.dumps(fixed), device_id))

    def get(self, device_id: str) -> dict[str, Any]:
        """The current state of one device."""
        self._known(device_id)
        with self._lock:
            row = self._db.execute("SELECT state FROM device_state WHERE device = ?", (device_id,)).fetchone()
        return json.loads(row[0])

    def all(self) -> dict[str, dict[str, Any]]:
        """device id -> state, for every device of the home (in home.toml's order)."""
        with self._lock:
            rows = dict(self._db.execute("SELECT device, state FROM device_state").fetchall())
        return {d: json.loads(rows[d]) for d in self.home.devices if d in rows}

    def apply(self, device_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into one device's state in one transaction; returns the new state."""
        return self.apply_many({device_id: changes})[device_id]

    def apply_many(self, changes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Change several devices in one transaction: all of them, or none (a kill mid-way keeps the old states)."""
        for device_id, change in changes.items():
            self._check(device_id, change)
        out: dict[str, dict[str, Any]] = {}
        with self._transaction() as db:
            for device_id, change in changes.items():
                row = db.execute("SELECT state FROM device_state WHERE device = ?", (device_id,)).fetchone()
                state = {**json.loads(row[0]), **change}
                db.execute("UPDATE device_state SET state = ?, updated = julianday('now') WHERE device = ?",
                           (json.dumps(state), device_id))
                out[device_id] = state
        return out

    def reset(self) -> dict[str, dict[str, Any]]:
        """Every device back to its default state from home.toml, in one transaction."""
        with self._transaction() as db:
            db.execute("DELETE FROM device_state")
            for device in self.home.devices.values():
                db.execute("INSERT INTO device_state VALUES (?, ?, julianday('now'))", (device.id, json.dumps(device.default)))
        return self.all()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "HomeState":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------------------
    def _transaction(self) -> "_Transaction":
        return _Transaction(self._db, self._lock)

    def _known(self, device_id: str) -> None:
        if device_id not in self.home.devices:
            raise GuimoError(f"unknown device {device_id!r} (devices of {self.home.source}: {', '.join(self.home.devices)})")

    def _repaired(self, device_id: str, stored: dict[str, Any]) -> dict[str, Any]:
        device = self.home.devices[device_id]
        out = dict(device.default)
        for attr, value in stored.items():
            try:
                self._check(device_id, {attr: value})
            except GuimoError:
                continue
            out[attr] = value
        return out

    def _check(self, device_id: str, change: dict[str, Any]) -> None:
        """A change must name the device's capabilities with values in range: the state file never holds a bad value."""
        self._known(device_id)
        device = self.home.devices[device_id]
        for attr, value in change.items():
            cap = device.capabilities.get(attr)
            if cap is None:
                raise GuimoError(f"{device_id}: has no {attr!r} (it has: {', '.join(device.capabilities)})")
            if attr in ("on", "locked"):
                ok = isinstance(value, bool)
            elif "values" in cap:
                ok = value in cap["values"]
            else:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and cap["min"] <= value <= cap["max"]
            if not ok:
                raise GuimoError(f"{device_id}: {attr} = {value!r} is outside what it takes ({_describe(cap, attr)})")


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception, under the connection's lock."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock):
        self.db, self.lock = db, lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.db

    def __exit__(self, kind, value, tb) -> None:
        try:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self.lock.release()


def _describe(cap: dict[str, Any], attr: str) -> str:
    if attr in ("on", "locked"):
        return "true or false"
    if "values" in cap:
        return ", ".join(cap["values"])
    return f"{cap['min']}..{cap['max']}"

