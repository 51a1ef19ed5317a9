"""The database: the embedded PostgreSQL cluster, roles, migrations and TAP_SCHEMA rows."""
