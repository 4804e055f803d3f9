"""unclaimed documents: a run counts the documents it found carrying a link value that no shop's rule claims

`sync_runs.documents_unclaimed`, 0 for every existing run (before shops, one shop claimed every document). The
downgrade drops the column; nothing else is lost.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 10:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("sync_runs", sa.Column("documents_unclaimed", sa.Integer(), nullable=False, server_default="0"))


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        # In place (SQLite 3.35+): a copy of the table would have to drop sync_runs, which updates.run_id references.
        op.execute("ALTER TABLE sync_runs DROP COLUMN documents_unclaimed")
    else:
        op.drop_column("sync_runs", "documents_unclaimed")
