"""batch workflows: each batch's flow, identity check, pay window, lock point, fee rule and texts

Revision ID: e5a7c9d1f3b2
Revises: c3e8f1a2b4d6
Create Date: 2026-12-07 21:00:00.000000

Existing batches keep today's behaviour: pay_first, identity check after payment, locked at
payment, a fee per attempt, no notice, pledge or signature.
"""
from alembic import op
import sqlalchemy as sa

import models.base


# revision identifiers, used by Alembic.
revision = 'e5a7c9d1f3b2'
down_revision = 'c3e8f1a2b4d6'
branch_labels = None
depends_on = None

OLD_IN_FLIGHT = "status IN ('awaiting_payment', 'verifying', 'pending_review', 'in_review')"
NEW_IN_FLIGHT = (
    "status IN ('awaiting_payment', 'verifying', 'pending_review', 'in_review', 'approved_unpaid')"
)


def _in_flight_index(where: str) -> None:
    op.create_index(
        'uq_submissions_in_flight_user',
        'submissions',
        ['user_id'],
        unique=True,
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )


def upgrade():
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flow', sa.String(length=16), server_default='pay_first', nullable=False))
        batch_op.add_column(sa.Column('verify_identity', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('pay_opens_at', models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('pay_closes_at', models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('lock_on', sa.String(length=8), server_default='pay', nullable=False))
        batch_op.add_column(sa.Column('fee_per_attempt', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('notice', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('pledge', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('signature', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('after_approval', sa.Text(), nullable=True))
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notice_acked_at', models.base.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pledged_at', models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('signature_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('confirmed_at', models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('fee_paid_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_submissions_fee_paid_by_id_submissions'),
            'submissions',
            ['fee_paid_by_id'],
            ['id'],
            ondelete='RESTRICT',
        )
    # An approved attempt awaiting its fee is still in flight: no second attempt beside it.
    op.drop_index('uq_submissions_in_flight_user', table_name='submissions')
    _in_flight_index(NEW_IN_FLIGHT)


def downgrade():
    op.drop_index('uq_submissions_in_flight_user', table_name='submissions')
    _in_flight_index(OLD_IN_FLIGHT)
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_submissions_fee_paid_by_id_submissions'), type_='foreignkey')
        batch_op.drop_column('fee_paid_by_id')
        batch_op.drop_column('confirmed_at')
        batch_op.drop_column('signature_key')
        batch_op.drop_column('pledged_at')
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.drop_column('notice_acked_at')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        for column in (
            'after_approval', 'signature', 'pledge', 'notice', 'fee_per_attempt', 'lock_on',
            'pay_closes_at', 'pay_opens_at', 'verify_identity', 'flow',
        ):
            batch_op.drop_column(column)
