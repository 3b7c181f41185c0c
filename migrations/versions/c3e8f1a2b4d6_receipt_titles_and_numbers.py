"""receipts: each batch's receipt title and note, and the printed receipt number

Revision ID: c3e8f1a2b4d6
Revises: df960188b60b
Create Date: 2026-12-07 19:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3e8f1a2b4d6'
down_revision = 'df960188b60b'
branch_labels = None
depends_on = None

RECEIPT_TITLE = "学位证书照片审核回执单"
RECEIPT_NOTE = "领取学位证时出示本回执；工作人员扫码即可核验真伪。"


def upgrade():
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('receipt_title', sa.String(length=60), server_default=RECEIPT_TITLE, nullable=False)
        )
        batch_op.add_column(
            sa.Column('receipt_note', sa.String(length=200), server_default=RECEIPT_NOTE, nullable=False)
        )
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('receipt_no', sa.String(length=24), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_submissions_receipt_no'), ['receipt_no'])


def downgrade():
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_submissions_receipt_no'), type_='unique')
        batch_op.drop_column('receipt_no')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('receipt_note')
        batch_op.drop_column('receipt_title')
