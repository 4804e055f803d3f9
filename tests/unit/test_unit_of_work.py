"""The unit of work: commit when the work stands; leaving the block rolls back the rest, on an error too."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from sync.services.unit_of_work import UnitOfWork


class FakeSession:
    def __init__(self):
        self.calls: list[str] = []

    def commit(self):
        self.calls.append("commit")

    def rollback(self):
        self.calls.append("rollback")

    def close(self):
        self.calls.append("close")


def test_the_entry_point_commits_and_leaving_rolls_back_what_is_left():
    session = FakeSession()
    with UnitOfWork(session) as uow:
        uow.commit()
    assert session.calls == ["commit", "rollback"]  # the rollback finds nothing left: committed work stands


def test_an_error_in_the_block_leaves_nothing_half_done():
    session = FakeSession()
    with pytest.raises(RuntimeError), UnitOfWork(session):
        raise RuntimeError("a service failed")
    assert session.calls == ["rollback"]


def test_a_session_it_was_given_stays_open():
    session = FakeSession()
    with UnitOfWork(session):
        pass
    assert "close" not in session.calls


def test_another_has_a_session_of_its_own_on_the_same_store_closed_when_left(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/store.db")
    with UnitOfWork(FakeSession()) as uow:
        uow.session.get_bind = lambda: engine
        with uow.another() as other:
            assert other.session is not uow.session and other.session.get_bind() is engine
            other.session.connection()  # a transaction begun: a connection taken from the pool
        assert not other.session.in_transaction()
    assert engine.pool.checkedout() == 0
