"""The unit of work: one transaction of our store, opened by the entry point that owns it.

An entry point (an API view, a CLI command, a scheduler tick, a run in the background) opens
`with UnitOfWork(session) as uow:`, calls services, and says when their work stands with `uow.commit()`;
leaving the block rolls back whatever was not committed, on an exception too. Services never commit: a one-shot
service adds and flushes; a service that keeps its work in steps (a run's chunks, the push's shop orders, the shop
poll's orders) is handed the unit of work and ends each step with `uow.commit()`.
"""

from __future__ import annotations

from sqlalchemy.orm import Session


class UnitOfWork:
    """The store's transaction, as the entry point sees it: commit when the work stands, else it is rolled back."""

    def __init__(self, session: Session, *, owns_session: bool = False):
        self.session = session
        self._owns_session = owns_session  # a session of its own is closed when the block is left

    def another(self) -> UnitOfWork:
        """A unit of work over a session of its own on the same store: for work done in another thread."""
        return UnitOfWork(Session(self.session.get_bind()), owns_session=True)

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self.rollback()
        finally:
            if self._owns_session:
                self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
