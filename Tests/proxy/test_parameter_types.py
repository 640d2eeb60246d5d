"""Parameter types a client declares in Parse (OIDs the text never shows) follow the policy's type
rules, resolved against the server's pg_type as Palisade read it at start or at the last reload."""
import os
import signal

import pytest

import wire
from conftest import DATABASE, Palisade, admin_sql, backend_url, entries_of
from test_operations import wait_for

REGROLE, REGROLE_ARRAY, XML, XML_ARRAY, INT4, TEXT, UNKNOWN = 4096, 4097, 142, 143, 23, 25, 705


def type_oid(name):
    import psycopg2
    connection = psycopg2.connect(dbname=DATABASE)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s::regtype::oid", (name,))
            return cursor.fetchone()[0]
    finally:
        connection.close()


@pytest.fixture(scope="module")
def typed(database, keys, monitor_policy):
    """Types a client might declare to smuggle xml or regrole in, made before Palisade starts."""
    admin_sql(database, "DROP DOMAIN IF EXISTS palisade_xml_domain CASCADE", "DROP TYPE IF EXISTS palisade_xml_row CASCADE",
              "DROP DOMAIN IF EXISTS palisade_text_domain CASCADE", "DROP DOMAIN IF EXISTS palisade_late_domain CASCADE",
              "CREATE DOMAIN palisade_xml_domain AS xml", "CREATE TYPE palisade_xml_row AS (note text, body xml)",
              "CREATE DOMAIN palisade_text_domain AS text")
    server = Palisade(["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable",
                       "--profile", f"monitor={monitor_policy}", "--lockout-denials", "1000"])
    yield server
    server.stop()
    admin_sql(database, "DROP DOMAIN IF EXISTS palisade_xml_domain CASCADE", "DROP TYPE IF EXISTS palisade_xml_row CASCADE",
              "DROP DOMAIN IF EXISTS palisade_text_domain CASCADE", "DROP DOMAIN IF EXISTS palisade_late_domain CASCADE")


def connect(server, keys, profile="agent"):
    return wire.Connection(server.port, keys[profile], user=profile, database=DATABASE)


def prepare(connection, types, sql="SELECT $1::text"):
    connection.send(wire.parse(sql, types=types) + wire.SYNC)
    return connection.read_until_ready()


def refusal(messages):
    assert wire.kinds(messages) == "EZ", messages
    return wire.fields(messages[0][1])


@pytest.mark.parametrize("types, rule, names", [
    ([REGROLE], "rel.catalog", "pg_catalog.regrole"),
    ([REGROLE_ARRAY], "rel.catalog", "pg_catalog._regrole"),
    ([XML], "fn.xml-parse", "pg_catalog.xml"),
    ([XML_ARRAY], "fn.xml-parse", "pg_catalog._xml"),
    ([TEXT, XML], "fn.xml-parse", "parameter $2"),
    ([4_000_000_000], "proto.parameter-type", "type OID 4000000000"),
])
def test_declared_types_the_rules_refuse_are_denied(typed, keys, types, rule, names):
    connection = connect(typed, keys)
    error = refusal(prepare(connection, types))
    assert error["C"] == "42501" and f"rule {rule};" in error["D"] and names in error["M"], error
    assert "Declare the parameter" in error.get("H", "") or rule == "proto.parameter-type"
    # The session goes on.
    connection.send(wire.query("SELECT 'after'"))
    assert wire.kinds(connection.read_until_ready()) == "TDCZ"
    connection.close()


def test_the_refusal_is_audited(typed, keys):
    connection = connect(typed, keys)
    refusal(prepare(connection, [REGROLE], sql="SELECT $1::text AS audited_declared_type"))
    connection.close()
    entries = [e for e in entries_of(typed.audit_dir) if "audited_declared_type" in (e.get("normalized") or "")]
    assert entries and entries[-1]["decision"] == "deny" and entries[-1]["rule"] == "rel.catalog", entries


def test_types_made_of_refused_types_are_denied(typed, keys):
    connection = connect(typed, keys)
    for name in ("palisade_xml_domain", "palisade_xml_row", "palisade_xml_domain[]"):
        error = refusal(prepare(connection, [type_oid(name)]))
        assert "rule fn.xml-parse;" in error["D"] and "which holds pg_catalog.xml" in error["M"], (name, error)
    connection.close()


def test_unspecified_and_ordinary_declared_types_run(typed, keys):
    connection = connect(typed, keys)
    for types in ([], [0], [INT4], [TEXT], [UNKNOWN], [type_oid("palisade_text_domain")]):
        connection.send(wire.parse("SELECT $1::text", types=types) + wire.bind(parameters=["42"]) + wire.execute() + wire.SYNC)
        messages = connection.read_until_ready()
        assert wire.values(messages) == ["42"], (types, messages)
    connection.close()


def test_a_profile_that_reads_the_catalogs_may_declare_regrole(typed, keys):
    connection = connect(typed, keys, profile="analyst")
    connection.send(wire.parse("SELECT $1::text", types=[REGROLE]) + wire.bind(parameters=["10"]) + wire.execute() + wire.SYNC)
    assert wire.values(connection.read_until_ready()) == ["postgres"]
    # xml parses text in every profile.
    assert "rule fn.xml-parse;" in refusal(prepare(connection, [XML]))["D"]
    connection.close()


def test_types_created_after_start_are_known_after_a_reload(typed, keys, database):
    admin_sql(database, "CREATE DOMAIN palisade_late_domain AS text")
    late = type_oid("palisade_late_domain")
    connection = connect(typed, keys)
    assert "rule proto.parameter-type;" in refusal(prepare(connection, [late]))["D"]
    connection.close()
    os.kill(typed.process.pid, signal.SIGHUP)
    wait_for(typed.log, "policies reloaded")
    connection = connect(typed, keys)
    connection.send(wire.parse("SELECT $1::text", types=[late]) + wire.bind(parameters=["late"]) + wire.execute() + wire.SYNC)
    assert wire.values(connection.read_until_ready()) == ["late"]
    connection.close()
