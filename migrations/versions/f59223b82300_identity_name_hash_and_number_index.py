"""identities: the lookup hash of the name, and a plain index on the number's hash

Revision ID: f59223b82300
Revises: e5a7c9d1f3b2
Create Date: 2026-12-07 20:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f59223b82300'
down_revision = 'e5a7c9d1f3b2'
branch_labels = None
depends_on = None


def upgrade():
    # name_hash stays NULL here: it needs the PII lookup key, which migrations do not hold.
    # Fill it afterwards with `flask pii backfill-name-hashes`.
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_hash', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_identities_name_hash', ['name_hash'], unique=False)
        batch_op.create_index('ix_identities_number_hash', ['number_hash'], unique=False)


def downgrade():
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_index('ix_identities_number_hash')
        batch_op.drop_index('ix_identities_name_hash')
        batch_op.drop_column('name_hash')
