"""TAP_SCHEMA's own foreign keys (TAP 1.1 sect. 4: tables→schemas, columns→tables, ...).

Declared in tap_schema.declaration and so also published in TAP_SCHEMA.keys.
"""

from alembic import op

revision = "0005_tap_schema_keys"
down_revision = "0004_uws"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE tap_schema.tables ADD CONSTRAINT tap_schema_tables_schema FOREIGN KEY (schema_name) REFERENCES tap_schema.schemas (schema_name) ON DELETE CASCADE DEFERRABLE")
    op.execute("ALTER TABLE tap_schema.columns ADD CONSTRAINT tap_schema_columns_table FOREIGN KEY (table_name) REFERENCES tap_schema.tables (table_name) ON DELETE CASCADE DEFERRABLE")
    op.execute("ALTER TABLE tap_schema.keys ADD CONSTRAINT tap_schema_keys_from FOREIGN KEY (from_table) REFERENCES tap_schema.tables (table_name) ON DELETE CASCADE DEFERRABLE")
    op.execute("ALTER TABLE tap_schema.keys ADD CONSTRAINT tap_schema_keys_target FOREIGN KEY (target_table) REFERENCES tap_schema.tables (table_name) ON DELETE CASCADE DEFERRABLE")
    op.execute("ALTER TABLE tap_schema.key_columns ADD CONSTRAINT tap_schema_key_columns_key FOREIGN KEY (key_id) REFERENCES tap_schema.keys (key_id) ON DELETE CASCADE DEFERRABLE")


def downgrade() -> None:
    op.execute("ALTER TABLE tap_schema.key_columns DROP CONSTRAINT tap_schema_key_columns_key")
    op.execute("ALTER TABLE tap_schema.keys DROP CONSTRAINT tap_schema_keys_target")
    op.execute("ALTER TABLE tap_schema.keys DROP CONSTRAINT tap_schema_keys_from")
    op.execute("ALTER TABLE tap_schema.columns DROP CONSTRAINT tap_schema_columns_table")
    op.execute("ALTER TABLE tap_schema.tables DROP CONSTRAINT tap_schema_tables_schema")
