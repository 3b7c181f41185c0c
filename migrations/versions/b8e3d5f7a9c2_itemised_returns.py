"""itemised returns: the items a 驳回 sends back to the student (form fields, document slots, the
photo), each with its reason

Revision ID: b8e3d5f7a9c2
Revises: d8f2a6c4e1b9
Create Date: 2026-12-07 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b8e3d5f7a9c2'
down_revision = 'd8f2a6c4e1b9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rejected_items', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('rejected_items')
