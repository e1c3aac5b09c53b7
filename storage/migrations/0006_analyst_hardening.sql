-- finsent storage, migration 6: hardening around the read-only analyst role.
--
-- finsent_analyst sessions are read-only by default, but default_transaction_read_only
-- is a setting any session may turn off (`finsent sql` runs one statement per call, so
-- it cannot, but a direct psql login can).  The analyst's grants allow no write to
-- finsent's tables; what PUBLIC may do in any database is removed here:
--   * temporary tables and functions (disk filling, pg_temp shadowing tricks);
--   * creating large objects (lo_create & co. write to pg_largeobject).
-- The owner and superusers keep both.  Database-wide and idempotent: every schema's
-- upgrade re-applies it.  A migrating user without the privilege gets a warning, not
-- an error (then ask the database owner to run these statements).

DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'finsent: cannot revoke TEMPORARY on database % from PUBLIC', current_database();
END
$$;

DO $$
BEGIN
    REVOKE EXECUTE ON FUNCTION pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer),
        pg_catalog.lo_from_bytea(oid, bytea) FROM PUBLIC;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'finsent: cannot revoke large-object creation from PUBLIC';
END
$$;
