"""public.lick_scircle: the never-failing circle constructor of upload cross-matches.

The ADQL translator builds every non-constant circle (a cross-match's
``CIRCLE(u.ra, u.dec, r)``) with it, so the function must exist even where the
superuser set-up (``auth.policy.leakproof_statements``, which also creates it and
marks it LEAKPROOF so that the join can use the spatial index under row-level
security) has not been run again since an upgrade: without the mark the queries are
correct but scan.  Created here only when missing; the superuser's version wins.
"""

from alembic import op

revision = "0011_safe_circle"
down_revision = "0010_schedule_runs"
branch_labels = None
depends_on = None

# A frozen copy of auth.policy.SAFE_CIRCLE_BODY when this revision was written.
BODY = """FUNCTION public.lick_scircle(p_center spoint, p_radius double precision)
RETURNS scircle LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
BEGIN
    IF p_radius >= 0 AND p_radius <= pg_catalog.pi() / 2 THEN
        RETURN public.scircle(p_center, p_radius);
    END IF;
    RETURN NULL;
END
$$"""


def upgrade() -> None:
    op.execute(f"""DO $do$ BEGIN
    IF to_regprocedure('public.lick_scircle(spoint, double precision)') IS NULL THEN
        EXECUTE $create$ CREATE {BODY} $create$;
    END IF;
END $do$""")


def downgrade() -> None:
    op.execute("""DO $do$ BEGIN
    IF pg_has_role(current_user, (SELECT proowner FROM pg_proc WHERE oid =
            to_regprocedure('public.lick_scircle(spoint, double precision)')), 'USAGE') THEN
        DROP FUNCTION public.lick_scircle(spoint, double precision);
    END IF;
END $do$""")
