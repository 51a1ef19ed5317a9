"""HTTP handlers only: parse parameters, call a service, serialize."""
