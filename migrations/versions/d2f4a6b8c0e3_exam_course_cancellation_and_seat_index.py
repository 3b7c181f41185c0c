"""exam courses: when the exam office cancelled one (its fee refunded to every paid candidate holding it);
registrations counted per site from an index

Revision ID: d2f4a6b8c0e3
Revises: b8e3d5f7a9c2
Create Date: 2026-12-07 23:55:00.000000

"""
from alembic import op
import sqlalchemy as sa

import models.base


# revision identifiers, used by Alembic.
revision = 'd2f4a6b8c0e3'
down_revision = 'b8e3d5f7a9c2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('exam_courses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancelled_at', models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('cancel_reason', sa.String(length=80), nullable=True))
    with op.batch_alter_table('exam_registrations', schema=None) as batch_op:
        batch_op.create_index('ix_exam_registrations_batch_id_site_id', ['batch_id', 'site_id'], unique=False)


def downgrade():
    with op.batch_alter_table('exam_registrations', schema=None) as batch_op:
        batch_op.drop_index('ix_exam_registrations_batch_id_site_id')
    with op.batch_alter_table('exam_courses', schema=None) as batch_op:
        batch_op.drop_column('cancel_reason')
        batch_op.drop_column('cancelled_at')
