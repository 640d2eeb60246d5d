"""Two tenants through Palisade on docker/demo.sql: row-level security scopes every shape of query."""
import os
import subprocess

import psycopg2
import psycopg2.errors
import pytest

from conftest import TENANT_DATABASE as DATABASE, TENANT_PASSWORD as PASSWORD, Palisade, create_key, tenant_query as query


@pytest.fixture(scope="module")
def tenants(tenant_database, workdir):
    key_file = workdir / "tenant-keys.yaml"
    issued = {"acme": create_key(key_file, "acme"), "globex": create_key(key_file, "globex"),
              "nobody": create_key(key_file, "initech"), "quote": create_key(key_file, "o'brien\"; DROP")}
    server = Palisade(["--backend", tenant_database, "--api-keys", str(key_file), "--tls-mode", "disable", "--lockout-denials", "1000"])
    yield server, issued
    server.stop()


def direct(sql, claims=None):
    """As Palisade's own role, straight to the server, with the claims set (or not) by hand."""
    connection = psycopg2.connect(host=os.environ["PGHOST"], port=os.environ["PGPORT"], dbname=DATABASE, user="palisade_app", password=PASSWORD)
    try:
        with connection.cursor() as cursor:
            if claims is not None:
                cursor.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims,))
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


def test_each_tenant_sees_exactly_its_rows(tenants):
    server, keys = tenants
    assert query(server, keys["acme"], "SELECT count(*) FROM orders") == [(120,)]
    assert query(server, keys["globex"], "SELECT count(*) FROM orders") == [(80,)]
    assert query(server, keys["acme"], "SELECT DISTINCT tenant_id FROM customers") == [("acme",)]
    assert query(server, keys["globex"], "SELECT count(*) FROM invoices") == [(80,)]


def test_a_tenant_without_rows_and_odd_tenant_names_see_nothing(tenants):
    server, keys = tenants
    assert query(server, keys["nobody"], "SELECT count(*) FROM orders") == [(0,)]
    assert query(server, keys["quote"], "SELECT count(*) FROM customers") == [(0,)]


@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM orders WHERE tenant_id = 'globex'",
    "SELECT count(*) FROM orders o JOIN customers c ON c.tenant_id <> o.tenant_id",
    "SELECT count(*) FROM (SELECT * FROM orders WHERE tenant_id <> 'acme') s",
    "WITH theirs AS (SELECT * FROM invoices WHERE tenant_id = 'globex') SELECT count(*) FROM theirs",
    "SELECT count(*) FROM order_totals WHERE tenant_id = 'globex'",
    "SELECT count(*) FROM orders WHERE tenant_id IN (SELECT 'globex' UNION SELECT 'initech')",
    "SELECT count(*) FROM orders WHERE EXISTS (SELECT 1 FROM customers WHERE tenant_id = 'globex')",
    "SELECT count(*) FROM orders WHERE current_setting('request.jwt.claims', true)::jsonb ->> 'tenant_id' = 'globex'",
])
def test_no_allowed_shape_reads_another_tenants_rows(tenants, sql):
    server, keys = tenants
    assert query(server, keys["acme"], sql) == [(0,)]


def test_views_run_as_the_caller(tenants):
    server, keys = tenants
    totals = query(server, keys["acme"], "SELECT count(*), sum(orders) FROM order_totals")
    assert totals == [(20, 120)]


def test_the_claim_cannot_be_changed_or_cleared(tenants):
    server, keys = tenants
    for sql in ("SELECT set_config('request.jwt.claims', '{\"tenant_id\":\"globex\"}', true)",
                "SET request.jwt.claims = '{\"tenant_id\":\"globex\"}'", "SET LOCAL request.jwt.claims = '{}'",
                "RESET request.jwt.claims", "RESET ALL", "DISCARD ALL", "SET ROLE postgres",
                "SET SESSION AUTHORIZATION postgres", "ROLLBACK TO SAVEPOINT s", "SAVEPOINT s"):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            query(server, keys["acme"], sql)
    assert query(server, keys["acme"], "SELECT count(*) FROM orders") == [(120,)]


def test_missing_or_wrong_claims_see_zero_rows_at_the_server():
    """The policies themselves: no claim, an empty one, a malformed tenant, or no tenant_id."""
    assert direct("SELECT count(*) FROM orders") == [(0,)]
    assert direct("SELECT count(*) FROM orders", claims="") == [(0,)]
    assert direct("SELECT count(*) FROM orders", claims='{"role":"agent"}') == [(0,)]
    assert direct("SELECT count(*) FROM orders", claims='{"tenant_id":"acme "}') == [(0,)]
    assert direct("SELECT count(*) FROM orders", claims='{"tenant_id":"acme"}') == [(120,)]


def test_palisades_role_cannot_write_or_bypass_security():
    with pytest.raises(psycopg2.Error):
        direct("DELETE FROM orders")
    assert direct("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user") == [(False, False)]


def test_functions_the_server_defines_cannot_take_over_a_name(tenant_database, workdir):
    # A function in the search path that rewrites the tenant claim, reachable from the text as a
    # better-matching overload of a built-in (upper(o)) and through attribute notation (o.f means f(o)).
    from conftest import admin_sql
    body = "SELECT set_config('request.jwt.claims', '{\"tenant_id\": \"globex\"}', false)"
    admin_sql(DATABASE, f"CREATE FUNCTION public.upper(orders) RETURNS text LANGUAGE sql AS $${body}$$",
              f"CREATE FUNCTION public.palisade_test_claim(orders) RETURNS text LANGUAGE sql AS $${body}$$")
    try:
        key_file = workdir / "shadow-keys.yaml"
        key = create_key(key_file, "acme")
        server = Palisade(["--backend", tenant_database, "--api-keys", str(key_file), "--tls-mode", "disable"])
        try:
            for sql in ("SELECT upper(o) FROM orders o LIMIT 1", "SELECT o.palisade_test_claim FROM orders o LIMIT 1"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege) as refused:
                    query(server, key, sql)
                assert "rule fn.not-allowed" in str(refused.value.diag.message_detail), sql
            # The built-in, named as such, still runs; so does everything else.
            assert query(server, key, "SELECT pg_catalog.upper(tenant_id) FROM orders LIMIT 1") == [("ACME",)]
            assert query(server, key, "SELECT count(*) FROM orders") == [(120,)]
        finally:
            server.stop()
    finally:
        admin_sql(DATABASE, "DROP FUNCTION public.upper(orders)", "DROP FUNCTION public.palisade_test_claim(orders)")
