"""The tenant and role of the validator behind each approval.

Four-eyes counts an approval only when its validator belongs to the model's
tenant or is an admin, so each approval now records who the validator was, not
just the actor's name. Rows written before this revision are attributed once,
here, from what their actor name proves:

* ``key:<id>`` of a stored key → that key's tenant and role (keys are never
  deleted and never change tenant or role);
* ``key:anonymous`` → ``default`` / ``admin`` (a server run with
  ``--insecure-no-auth``, where every caller is an anonymous admin);
* any other name (``local:<user>``, or a name a Python caller passed) → ``default`` /
  ``admin``: only someone who can write the registry directly, the local operator,
  can record such a name, and the local operator is an admin;
* ``key:<id>`` of no stored key → left empty: an approval nobody can vouch for does
  not count.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_approvals = sa.table(
    "approvals",
    sa.column("id", sa.Integer),
    sa.column("actor", sa.String),
    sa.column("tenant", sa.String),
    sa.column("role", sa.String),
)
_keys = sa.table(
    "api_keys",
    sa.column("id", sa.String),
    sa.column("tenant", sa.String),
    sa.column("role", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("tenant", sa.String(64), nullable=True))
        batch.add_column(sa.Column("role", sa.String(16), nullable=True))
    conn = op.get_bind()
    keys = {row.id: (row.tenant, row.role) for row in conn.execute(sa.select(_keys))}
    keys["anonymous"] = ("default", "admin")
    for row in conn.execute(sa.select(_approvals.c.id, _approvals.c.actor)).all():
        if row.actor.startswith("key:"):
            found = keys.get(row.actor[4:])
            if found is None:
                continue
            tenant, role = found
        else:
            tenant, role = "default", "admin"
        conn.execute(
            sa.update(_approvals).where(_approvals.c.id == row.id).values(tenant=tenant, role=role)
        )


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("role")
        batch.drop_column("tenant")
