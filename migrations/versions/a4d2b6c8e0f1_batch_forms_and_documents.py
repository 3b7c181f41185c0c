"""batch forms and documents: each batch's form definition, the enrollment's answers and completion
stamps, and the documents students upload into the batch's slots

Revision ID: a4d2b6c8e0f1
Revises: f59223b82300
Create Date: 2026-12-07 21:50:00.000000

"""
from alembic import op
import sqlalchemy as sa

import models.base


# revision identifiers, used by Alembic.
revision = 'a4d2b6c8e0f1'
down_revision = 'f59223b82300'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('form', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('has_form', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('has_documents', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('form_answers', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('form_completed_at', models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column('documents_completed_at', models.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table('documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('slot', sa.String(length=40), nullable=False),
    sa.Column('storage_key', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('mime_type', sa.String(length=100), nullable=False),
    sa.Column('bytes', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], name=op.f('fk_documents_batch_id_batches'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_documents_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_documents'))
    )
    op.create_index('ix_documents_user_batch', 'documents', ['user_id', 'batch_id'], unique=False)


def downgrade():
    op.drop_index('ix_documents_user_batch', table_name='documents')
    op.drop_table('documents')
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.drop_column('documents_completed_at')
        batch_op.drop_column('form_completed_at')
        batch_op.drop_column('form_answers')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('has_documents')
        batch_op.drop_column('has_form')
        batch_op.drop_column('form')
