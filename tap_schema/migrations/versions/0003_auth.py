"""Identity and access: accounts, tokens, grants, audit, and row-level security.

Everything lives in schema ``auth``, owned by the owner role and unreadable by the
query role.  Row visibility on ``ivoa.obscore`` and ``lick.files`` is enforced by
PostgreSQL policies that apply to every role but the tables' owner; the requester is
named per transaction by ``auth.assume(user_id, mac)``, whose HMAC (keyed by a
secret only the owner can read, over the user id, the backend pid and the
transaction's start) the policy functions re-verify, so that SQL run as the query
role can neither forge nor replay an identity.
"""

from alembic import op

revision = "0003_auth"
down_revision = "0002_ingest"
branch_labels = None
depends_on = None


TABLES = r"""
CREATE SCHEMA auth;
REVOKE ALL ON SCHEMA auth FROM PUBLIC;

CREATE TABLE auth.users (
    user_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    observer_id integer UNIQUE,
    login text NOT NULL,
    first_name text NOT NULL DEFAULT '',
    last_name text NOT NULL DEFAULT '',
    email text NOT NULL DEFAULT '',
    password_hash text,
    is_active boolean NOT NULL DEFAULT true,
    disabled_reason text,
    is_staff boolean NOT NULL DEFAULT false,
    is_admin boolean NOT NULL DEFAULT false,
    is_local boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    synced_at timestamptz,
    CONSTRAINT users_synced_have_observer CHECK (is_local OR observer_id IS NOT NULL)
);
CREATE UNIQUE INDEX users_login_idx ON auth.users (lower(login));
COMMENT ON TABLE auth.users IS
    'Accounts: observers synced from the scheduling database (is_local = false, '
    'observer_id = obid, $apr1$ hashes) and local staff/admin accounts.';

CREATE TABLE auth.groups (
    group_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE auth.groups IS 'Named sets of users (e.g. a program''s team), grantees of grants.';

CREATE TABLE auth.group_members (
    group_id integer NOT NULL REFERENCES auth.groups ON DELETE CASCADE,
    user_id integer NOT NULL REFERENCES auth.users ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_idx ON auth.group_members (user_id);

CREATE TABLE auth.tokens (
    token_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id integer NOT NULL REFERENCES auth.users ON DELETE CASCADE,
    prefix text NOT NULL UNIQUE,
    secret_hash bytea NOT NULL UNIQUE,
    label text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX tokens_user_idx ON auth.tokens (user_id);
COMMENT ON TABLE auth.tokens IS
    'Personal bearer tokens: only the SHA-256 of the token is stored; prefix identifies it.';

CREATE TABLE auth.sessions (
    session_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id integer NOT NULL REFERENCES auth.users ON DELETE CASCADE,
    secret_hash bytea NOT NULL UNIQUE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    address text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_idx ON auth.sessions (user_id);
CREATE INDEX sessions_expires_idx ON auth.sessions (expires_at);
COMMENT ON TABLE auth.sessions IS
    'Web sessions: the cookie value is stored as its SHA-256; csrf_token is the form token.';

CREATE TABLE auth.login_attempts (
    attempt_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    login text NOT NULL,
    address text NOT NULL,
    succeeded boolean NOT NULL
);
CREATE INDEX login_attempts_login_idx ON auth.login_attempts (login, at);
CREATE INDEX login_attempts_address_idx ON auth.login_attempts (address, at);

CREATE TABLE auth.audit_log (
    event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    event text NOT NULL,
    actor_user_id integer,
    actor_login text NOT NULL DEFAULT '',
    address text NOT NULL DEFAULT '',
    target text NOT NULL DEFAULT '',
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON auth.audit_log (at);
CREATE INDEX audit_log_event_idx ON auth.audit_log (event, at);
COMMENT ON TABLE auth.audit_log IS
    'Logins, token and grant changes, account changes and downloads of proprietary files. '
    'No foreign keys: the record outlives the accounts it names.';

CREATE TABLE auth.grants (
    grant_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id integer REFERENCES auth.users ON DELETE CASCADE,
    group_id integer REFERENCES auth.groups ON DELETE CASCADE,
    did text,
    night date,
    instrument_dir text,
    program text,
    expires_at timestamptz,
    granted_by integer REFERENCES auth.users ON DELETE SET NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    revoked_by integer REFERENCES auth.users ON DELETE SET NULL,
    note text NOT NULL DEFAULT '',
    CONSTRAINT grants_one_grantee CHECK (num_nonnulls(user_id, group_id) = 1),
    CONSTRAINT grants_one_target CHECK (num_nonnulls(did, night, program) = 1),
    CONSTRAINT grants_instrument_with_night CHECK (instrument_dir IS NULL OR night IS NOT NULL)
);
CREATE INDEX grants_user_idx ON auth.grants (user_id) WHERE revoked_at IS NULL;
CREATE INDEX grants_group_idx ON auth.grants (group_id) WHERE revoked_at IS NULL;
COMMENT ON TABLE auth.grants IS
    'Override grants: a user or group may see one file (did), a night (optionally one '
    'instrument directory) or a program before release; optional expiry.';

CREATE TABLE auth.identity_secret (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    secret bytea NOT NULL CHECK (length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO auth.identity_secret (secret) VALUES (public.gen_random_bytes(32));
COMMENT ON TABLE auth.identity_secret IS
    'HMAC key binding a query transaction to its requester; readable by the owner only.';
"""


FUNCTIONS = r"""
-- The current observing night: noon to noon Pacific Standard Time (UTC-8, no DST),
-- named by the date of its first noon; a night starts at 20:00 UTC.
CREATE FUNCTION auth.current_night() RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ((now() AT TIME ZONE 'UTC') - interval '20 hours')::date $$;

-- Rows whose release date is before this instant are public: a release date falls
-- on or before the current night.
CREATE FUNCTION auth.public_before() RETURNS timestamp
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT (auth.current_night() + 1)::timestamp $$;

-- The transaction's start in microseconds since the epoch: with pg_backend_pid() it
-- names this transaction uniquely, so an assertion cannot be replayed in another.
CREATE FUNCTION auth.transaction_stamp() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT (extract(epoch FROM transaction_timestamp()) * 1000000)::bigint::text $$;

CREATE FUNCTION auth._assertion_mac(p_claim text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT encode(public.hmac(
        convert_to(p_claim || ':' || pg_backend_pid() || ':' || auth.transaction_stamp(), 'UTF8'),
        s.secret, 'sha256'), 'hex')
    FROM auth.identity_secret AS s
$$;

-- Compare MACs through a second hash so that the comparison time says nothing
-- about how many leading characters of a guess were right.
CREATE FUNCTION auth._mac_matches(p_claim text, p_mac text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p_mac IS NOT NULL
       AND sha256(convert_to(auth._assertion_mac(p_claim), 'UTF8'))
           = sha256(convert_to(p_mac, 'UTF8'))
$$;

-- The verified requester of this transaction: an active account's user id, or NULL
-- (anonymous) when nothing was asserted, the settings were tampered with, or the
-- account is disabled.  Settings are re-verified here on every query because any
-- role can change them with set_config().
CREATE FUNCTION auth._requester_id() RETURNS integer
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_claim text := current_setting('lick_auth.user_id', true);
    v_mac text := current_setting('lick_auth.mac', true);
    v_id integer;
BEGIN
    IF v_claim IS NULL OR v_claim !~ '^[0-9]{1,9}$' OR NOT auth._mac_matches(v_claim, v_mac) THEN
        RETURN NULL;
    END IF;
    SELECT u.user_id INTO v_id FROM auth.users AS u
     WHERE u.user_id = v_claim::integer AND u.is_active;
    RETURN v_id;
END
$$;

CREATE FUNCTION auth.assume(p_user_id integer, p_mac text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_claim text := coalesce(p_user_id::text, 'anonymous');
BEGIN
    IF NOT auth._mac_matches(v_claim, p_mac) THEN
        RAISE EXCEPTION 'identity assertion rejected' USING ERRCODE = '28000';
    END IF;
    PERFORM set_config('lick_auth.user_id', v_claim, true);
    PERFORM set_config('lick_auth.mac', p_mac, true);
END
$$;

CREATE FUNCTION auth.requester_user_id() RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT auth._requester_id() $$;

CREATE FUNCTION auth.requester_is_staff() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT u.is_staff OR u.is_admin FROM auth.users AS u
                      WHERE u.user_id = auth._requester_id()), false)
$$;

-- The keys owner_ids holds for the requester: its observer id, or nothing.
CREATE FUNCTION auth.requester_owner_keys() RETURNS integer[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT ARRAY[u.observer_id] FROM auth.users AS u
                      WHERE u.user_id = auth._requester_id()
                        AND u.observer_id IS NOT NULL), '{}'::integer[])
$$;

-- Datasets opened to the requester by live override grants (its own or its groups').
CREATE FUNCTION auth.requester_granted_dids() RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id integer := auth._requester_id();
BEGIN
    IF v_id IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH live AS (
        SELECT g.* FROM auth.grants AS g
         WHERE g.revoked_at IS NULL
           AND (g.expires_at IS NULL OR g.expires_at > now())
           AND (g.user_id = v_id
                OR g.group_id IN (SELECT m.group_id FROM auth.group_members AS m
                                   WHERE m.user_id = v_id))
    )
    SELECT live.did FROM live WHERE live.did IS NOT NULL
    UNION
    SELECT f.obs_publisher_did FROM live JOIN lick.files AS f
        ON f.night = live.night
       AND (live.instrument_dir IS NULL OR f.instrument_dir = live.instrument_dir)
     WHERE live.night IS NOT NULL
    UNION
    SELECT f.obs_publisher_did FROM live JOIN lick.files AS f ON f.program = live.program
     WHERE live.program IS NOT NULL;
END
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA auth FROM PUBLIC;
GRANT USAGE ON SCHEMA auth TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    auth.current_night(), auth.public_before(), auth.transaction_stamp(),
    auth.assume(integer, text), auth.requester_user_id(), auth.requester_is_staff(),
    auth.requester_owner_keys(), auth.requester_granted_dids()
TO PUBLIC;
"""


POLICIES = r"""
-- Each (SELECT ...) is an InitPlan: evaluated once per query, not per row; the
-- grant list is an uncorrelated IN subquery, hashed once.
ALTER TABLE ivoa.obscore ENABLE ROW LEVEL SECURITY;
CREATE POLICY obscore_visible ON ivoa.obscore FOR SELECT TO PUBLIC USING (
    (SELECT auth.requester_is_staff())
    OR obs_release_date < (SELECT auth.public_before())
    OR (owner_ids && (SELECT auth.requester_owner_keys()) AND obs_release_date IS NOT NULL)
    OR obs_publisher_did IN (SELECT auth.requester_granted_dids())
);

ALTER TABLE lick.files ENABLE ROW LEVEL SECURITY;
CREATE POLICY files_visible ON lick.files FOR SELECT TO PUBLIC USING (
    (SELECT auth.requester_is_staff())
    OR release_date < (SELECT auth.public_before())
    OR (owner_ids && (SELECT auth.requester_owner_keys()) AND release_date IS NOT NULL)
    OR obs_publisher_did IN (SELECT auth.requester_granted_dids())
);
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
    op.execute(TABLES)
    op.execute(FUNCTIONS)
    op.execute(POLICIES)


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS files_visible ON lick.files")
    op.execute("ALTER TABLE lick.files DISABLE ROW LEVEL SECURITY")
    op.execute("DROP POLICY IF EXISTS obscore_visible ON ivoa.obscore")
    op.execute("ALTER TABLE ivoa.obscore DISABLE ROW LEVEL SECURITY")
    op.execute("DROP SCHEMA auth CASCADE")
