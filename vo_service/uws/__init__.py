"""UWS 1.1 asynchronous jobs: model, PostgreSQL store, runner, service (no HTTP here)."""
