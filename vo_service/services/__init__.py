"""Framework-free services the handlers call (no starlette here)."""
