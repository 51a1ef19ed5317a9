"""The Lick Archive VO service: TAP, SIAv2, DataLink and pages over one PostgreSQL database."""
