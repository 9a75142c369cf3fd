"""Each tenant's home for /v1/assistant: one ``guimo.assistant.core.Assistant`` per (tenant, model).

A tenant's devices live in ``<root>/<tenant id>/state.sqlite`` (``root``: the server's
``assistant_path()``, by default ``assistant`` beside the SQLite ledger), so tenant A's "turn off
the lights" can never reach tenant B's lights: the tenant comes from the API key, never from the
request. A tenant's own ``<root>/<tenant id>/home.toml``, when an operator puts one there, replaces
the packaged home for that tenant (read when the tenant's first request arrives).

What is shared: the NLU model (one per served run, called through the model's batcher) and the
speech recogniser of each distinct home (pocketsphinx with that home's grammar, built on the first
audio request and used under a lock: a decoder is not re-entrant).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from guimo.assistant.core import Assistant, SharedRecognizer


class AssistantHomes:
    """The tenants' assistants under ``root``, opened on first use and kept for the server's life."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._assistants: dict[tuple[int, str], Assistant] = {}
        self._recognizers: dict[str, SharedRecognizer] = {}  # home file (or "" for the packaged one) -> recogniser
        self._homes: dict[str, Any] = {}
        self._lock = threading.Lock()

    def folder(self, tenant_id: int) -> Path:
        return self.root / str(int(tenant_id))

    def get(self, tenant_id: int, model_name: str, nlu) -> Assistant:
        """The tenant's assistant over ``nlu`` (a served run's predictor); its state file is created on first use."""
        key = (int(tenant_id), model_name)
        with self._lock:
            found = self._assistants.get(key)
            if found is not None:
                return found
            from guimo.assistant.state import HomeState

            folder = self.folder(tenant_id)
            folder.mkdir(parents=True, exist_ok=True)
            own = folder / "home.toml"
            home_key = str(own) if own.is_file() else ""
            home = self._home(home_key)
            recognizer = self._recognizers.setdefault(home_key, SharedRecognizer(home))
            # every model of one tenant works on the same devices: one state file per tenant
            same = [a for (t, _), a in self._assistants.items() if t == key[0]]
            state = same[0].state if same else HomeState(folder / "state.sqlite", home)
            assistant = self._assistants[key] = Assistant(nlu, home, state, recognizer=recognizer,
                                                          lock=same[0].lock if same else None)
            return assistant

    def close(self) -> None:
        """Close every tenant's state file (the server's shutdown; each change is already committed)."""
        with self._lock:
            for state in {id(a.state): a.state for a in self._assistants.values()}.values():
                state.close()
            self._assistants.clear()

    def _home(self, home_key: str):
        from guimo.assistant.home import Home

        if home_key not in self._homes:
            self._homes[home_key] = Home.load(home_key or None)
        return self._homes[home_key]
