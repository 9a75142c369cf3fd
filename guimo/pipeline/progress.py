"""Progress bars (rich) that vanish with --quiet and on non-main DDP ranks."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


class Progress:
    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._rich = None
        if not quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("[bold]{task.description:<10}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )

    def __enter__(self) -> "Progress":
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.stop()

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator["Task"]:
        """A bar for one piece of work: drawn full when the block ends, marked failed (or
        interrupted) and left where it stopped when the block raises."""
        t = Task(self._rich, description, total)
        try:
            yield t
        except BaseException as e:
            t.fail("interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
            raise
        t.finish()

    def log(self, message: str) -> None:
        if self._rich is not None:
            self._rich.console.print(message)


class Task:
    def __init__(self, rich, description: str, total: int | None) -> None:
        self._rich = rich
        self._id = rich.add_task(description, total=total, info="") if rich is not None else None

    def update(self, completed: int | None = None, total: int | None = None, info: str | None = None, advance: int | None = None) -> None:
        if self._rich is None:
            return
        kwargs = {}
        if completed is not None:
            kwargs["completed"] = completed
        if total is not None:
            kwargs["total"] = total
        if info is not None:
            kwargs["info"] = info
        if advance is not None:
            kwargs["advance"] = advance
        self._rich.update(self._id, **kwargs)

    def _task(self):
        return self._rich.tasks[[t.id for t in self._rich.tasks].index(self._id)]

    def finish(self) -> None:
        if self._rich is None:
            return
        task = self._task()
        if task.total is None:
            self._rich.update(self._id, total=max(1, task.completed), completed=max(1, task.completed))
        else:
            self._rich.update(self._id, completed=task.total)

    def fail(self, word: str = "failed") -> None:
        """Stop the bar where it is (a pulsing bar of unknown length shows 0 of 1) and say ``word``."""
        if self._rich is None:
            return
        task = self._task()
        self._rich.update(self._id, total=task.total if task.total is not None else 1,
                          description=f"[red]{task.description} {word}", info=f"[red]{word}")
        self._rich.stop_task(self._id)
