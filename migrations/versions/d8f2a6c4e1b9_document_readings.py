"""document readings: what the ID card reading found on a file in an id_card_front/id_card_back slot

Revision ID: d8f2a6c4e1b9
Revises: b8d3f5a7c9e1
Create Date: 2026-12-07 23:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd8f2a6c4e1b9'
down_revision = 'b8d3f5a7c9e1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reading', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_column('reading')
