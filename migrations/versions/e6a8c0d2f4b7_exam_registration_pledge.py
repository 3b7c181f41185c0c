"""exam registrations record when the candidate pledged 本人担保以上信息真实准确

Revision ID: e6a8c0d2f4b7
Revises: d2f4a6b8c0e3
Create Date: 2026-12-08 00:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

import models.base


# revision identifiers, used by Alembic.
revision = 'e6a8c0d2f4b7'
down_revision = 'd2f4a6b8c0e3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('exam_registrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pledged_at', models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('exam_registrations', schema=None) as batch_op:
        batch_op.drop_column('pledged_at')
