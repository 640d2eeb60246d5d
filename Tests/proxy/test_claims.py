"""Every transaction carries the tenant's claims, whatever the protocol does: Palisade's own statement
and portal cannot be named by a client, and every way to start a transaction sets the claims or is
denied. Each test reads the claim the server sees (`current_setting('request.jwt.claims')`)."""
import json

import pytest

import wire
from conftest import DATABASE, Palisade, backend_url

CLAIM = "SELECT current_setting('request.jwt.claims', true)"


@pytest.fixture(scope="module")
def palisade(database, keys, monitor_policy):
    """Its own Palisade: the denials here would lock the shared one's agent key out."""
    server = Palisade(["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable",
                       "--profile", f"monitor={monitor_policy}", "--lockout-denials", "1000"])
    yield server
    server.stop()


def connect(palisade, keys, profile="agent"):
    return wire.Connection(palisade.port, keys[profile], user=profile, database=DATABASE)


def claims_in(messages):
    """The tenants of the claims that the rows show; an empty or missing claim shows as ''."""
    return [json.loads(value)["tenant_id"] if value else "" for value in wire.values(messages)]


def run(connection, data):
    connection.send(data)
    return connection.read_until_ready()


def error(messages):
    return next(wire.fields(body) for kind, body in messages if kind == b"E")


def test_palisades_claims_statement_cannot_be_described_closed_or_replaced(palisade, keys):
    connection = connect(palisade, keys)
    assert claims_in(run(connection, wire.query(CLAIM))) == ["acme"]
    # Palisade's statement exists on the server now; to the client the name is free.
    messages = run(connection, wire.describe_statement("palisade_claims") + wire.SYNC)
    assert wire.kinds(messages) == "EZ" and error(messages)["C"] == "26000"
    # Closing it and preparing one's own under its name makes an ordinary statement of the client's.
    assert wire.kinds(run(connection, wire.close_statement("palisade_claims")
                          + wire.parse("SELECT $1::text, $2::text", name="palisade_claims") + wire.SYNC)) == "31Z"
    assert claims_in(run(connection, wire.query(CLAIM))) == ["acme"]
    messages = run(connection, wire.bind("palisade_claims", parameters=["mine", "too"]) + wire.execute() + wire.SYNC)
    assert wire.values(messages) == ["mine"]
    # Nor is its portal reachable: a client portal of that name is the client's.
    run(connection, wire.query("BEGIN"))
    messages = run(connection, wire.parse(CLAIM, name="c") + wire.bind("c", portal="palisade_claims")
                   + wire.execute("palisade_claims") + wire.execute("palisade_claims") + wire.SYNC)
    assert claims_in(messages) == ["acme"]
    assert wire.kinds(run(connection, wire.query("COMMIT")))[-1:] == "Z"
    assert claims_in(run(connection, wire.query(CLAIM))) == ["acme"]
    connection.close()


def test_a_statement_name_that_exists_keeps_what_was_admitted_under_it(palisade, keys):
    # The server refuses to prepare a name twice; a COMMIT prepared over a query must not make
    # Palisade run that query as if it were transaction control, without the claims.
    connection = connect(palisade, keys)
    assert wire.kinds(run(connection, wire.parse(CLAIM, name="twice") + wire.SYNC)) == "1Z"
    messages = run(connection, wire.parse("COMMIT", name="twice") + wire.SYNC)
    assert wire.kinds(messages) == "EZ" and error(messages)["C"] == "42P05"
    assert claims_in(run(connection, wire.bind("twice") + wire.execute() + wire.SYNC)) == ["acme"]
    connection.close()


def test_an_unnamed_statement_the_server_skipped_is_not_taken_for_the_one_it_kept(palisade, keys):
    # After an error the server skips the rest up to Sync, a Parse of the unnamed statement too: it
    # keeps the query, and must not run it as the COMMIT the client meant to put in its place.
    connection = connect(palisade, keys)
    assert wire.kinds(run(connection, wire.parse(CLAIM) + wire.parse("SELECT 1 / 0", name="bad") + wire.SYNC)) == "11Z"
    messages = run(connection, wire.bind("bad", portal="b") + wire.execute("b") + wire.parse("COMMIT") + wire.SYNC)
    assert error(messages)["C"] == "22012"
    messages = run(connection, wire.bind() + wire.execute() + wire.SYNC)
    assert wire.kinds(messages) == "EZ" and error(messages)["C"] == "26000"
    # Palisade's own use of the unnamed statement (a simple query) is whole in one write.
    assert claims_in(run(connection, wire.parse(CLAIM) + wire.bind() + wire.query(CLAIM))) == ["acme"]
    connection.close()


def test_long_names_are_one_statement_as_on_the_server(palisade, keys):
    # The server keys a statement by its name's first 63 bytes, and so does Palisade (red team 3: a
    # proxy that kept whole names held a megabyte per name). These two are one name: the second
    # Parse is refused as the server refuses it, and the name, whichever spelling, is the claim
    # query. The client's names never reach the server, so nothing can meet Palisade's own there.
    stem = "n" * 63
    connection = connect(palisade, keys)
    messages = run(connection, wire.parse(CLAIM, name=stem + "_query") + wire.parse("COMMIT", name=stem + "_commit") + wire.SYNC)
    assert wire.kinds(messages) == "1EZ" and error(messages)["C"] == "42P05"
    messages = run(connection, wire.bind(stem + "_commit") + wire.execute() + wire.SYNC)
    assert claims_in(messages) == ["acme"]
    assert [kind for kind, _ in messages if kind == b"C"] == [b"C"]
    connection.close()


def test_pipelined_transactions_each_carry_the_claims(palisade, keys):
    connection = connect(palisade, keys)
    assert wire.kinds(run(connection, wire.parse(CLAIM, name="c") + wire.parse("COMMIT", name="commit") + wire.SYNC)) == "11Z"
    # Three implicit transactions in one write, each ended by its Sync.
    connection.send((wire.bind("c") + wire.execute() + wire.SYNC) * 3)
    assert [claims_in(connection.read_until_ready()) for _ in range(3)] == [["acme"]] * 3
    # Simple queries: each is its own transaction.
    connection.send(wire.query(CLAIM) * 3)
    assert [claims_in(connection.read_until_ready()) for _ in range(3)] == [["acme"]] * 3
    # A COMMIT without Sync ends the implicit transaction; the next statement starts another.
    messages = run(connection, wire.bind("c") + wire.execute() + wire.bind("commit") + wire.execute()
                   + wire.bind("c") + wire.execute() + wire.SYNC)
    assert claims_in(messages) == ["acme", "acme"]
    connection.close()


@pytest.mark.parametrize("chain", ["COMMIT AND CHAIN", "ROLLBACK AND CHAIN", "END AND CHAIN", "ABORT AND CHAIN"])
def test_chained_transactions_carry_the_claims(palisade, keys, chain):
    connection = connect(palisade, keys)
    assert wire.kinds(run(connection, wire.query("BEGIN")))[-1:] == "Z"
    assert claims_in(run(connection, wire.query(CLAIM))) == ["acme"]
    messages = run(connection, wire.query(chain))
    assert messages[-1] == (b"Z", b"T")
    assert claims_in(run(connection, wire.query(CLAIM))) == ["acme"]
    # The same in the extended protocol, in one pipeline.
    messages = run(connection, wire.parse(CLAIM, name="c") + wire.parse(chain, name="chain")
                   + wire.bind("c") + wire.execute() + wire.bind("chain") + wire.execute() + wire.bind("c") + wire.execute() + wire.SYNC)
    assert claims_in(messages) == ["acme", "acme"]
    assert wire.kinds(run(connection, wire.query("COMMIT")))[-1:] == "Z"
    connection.close()


@pytest.mark.parametrize("begin", ["BEGIN", "START TRANSACTION", "BEGIN READ ONLY", "BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE",
                                   "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", "BEGIN TRANSACTION DEFERRABLE"])
def test_explicit_transactions_carry_the_claims(palisade, keys, begin):
    connection = connect(palisade, keys)
    messages = run(connection, wire.query(begin))
    assert messages[-1] == (b"Z", b"T")
    assert claims_in(run(connection, wire.query(CLAIM))) == ["acme"]
    assert claims_in(run(connection, wire.query(CLAIM))) == ["acme"]
    assert wire.kinds(run(connection, wire.query("COMMIT")))[-1:] == "Z"
    # The extended protocol, with BEGIN and the query in one pipeline (prepared before: parsing a
    # query takes a snapshot, after which the server refuses to set an isolation level).
    assert wire.kinds(run(connection, wire.parse(begin, name="b") + wire.parse(CLAIM, name="c") + wire.SYNC)) == "11Z"
    messages = run(connection, wire.bind("b") + wire.execute() + wire.bind("c") + wire.execute() + wire.SYNC)
    assert claims_in(messages) == ["acme"] and messages[-1] == (b"Z", b"T")
    assert claims_in(run(connection, wire.bind("c") + wire.execute() + wire.SYNC)) == ["acme"]
    assert wire.kinds(run(connection, wire.query("ROLLBACK")))[-1:] == "Z"
    connection.close()


def test_transactions_after_an_error_carry_the_claims(palisade, keys):
    connection = connect(palisade, keys)
    run(connection, wire.query("BEGIN"))
    messages = run(connection, wire.query("SELECT 1 / 0"))
    assert error(messages)["C"] == "22012" and messages[-1] == (b"Z", b"E")
    # In the failed transaction, the query is refused by the server as usual.
    messages = run(connection, wire.query(CLAIM))
    assert error(messages)["C"] == "25P02" and messages[-1] == (b"Z", b"E")
    # ROLLBACK and the next query in one write: the query starts a new transaction with the claims.
    connection.send(wire.query("ROLLBACK") + wire.query(CLAIM))
    assert connection.read_until_ready()[-1] == (b"Z", b"I")
    assert claims_in(connection.read_until_ready()) == ["acme"]
    # A failed block left by ROLLBACK AND CHAIN.
    run(connection, wire.query("BEGIN"))
    run(connection, wire.query("SELECT 1 / 0"))
    connection.send(wire.query("ROLLBACK AND CHAIN") + wire.query(CLAIM))
    assert connection.read_until_ready()[-1] == (b"Z", b"T")
    assert claims_in(connection.read_until_ready()) == ["acme"]
    run(connection, wire.query("ROLLBACK"))
    # Implicit transactions: an error, then the next one in the same write.
    assert wire.kinds(run(connection, wire.parse("SELECT 1 / 0", name="bad") + wire.parse(CLAIM, name="c") + wire.SYNC)) == "11Z"
    connection.send(wire.bind("bad") + wire.execute() + wire.SYNC + wire.bind("c") + wire.execute() + wire.SYNC)
    assert error(connection.read_until_ready())["C"] == "22012"
    assert claims_in(connection.read_until_ready()) == ["acme"]
    connection.close()


def test_prepared_statements_and_portals_across_transactions(palisade, keys):
    connection = connect(palisade, keys)
    # Prepared in one transaction, run in later ones.
    run(connection, wire.query("BEGIN"))
    assert wire.kinds(run(connection, wire.parse(CLAIM, name="later") + wire.SYNC)) == "1Z"
    run(connection, wire.query("COMMIT"))
    assert claims_in(run(connection, wire.bind("later") + wire.execute() + wire.SYNC)) == ["acme"]
    run(connection, wire.query("BEGIN"))
    assert claims_in(run(connection, wire.bind("later") + wire.execute() + wire.SYNC)) == ["acme"]
    # A portal bound before COMMIT is gone after it, as on the server.
    assert wire.kinds(run(connection, wire.bind("later", portal="kept") + wire.SYNC)) == "2Z"
    run(connection, wire.query("COMMIT"))
    messages = run(connection, wire.execute("kept") + wire.SYNC)
    assert wire.kinds(messages) == "EZ" and error(messages)["C"] == "34000"
    # Bound and run in an explicit transaction with a Sync between: still the claims.
    run(connection, wire.query("BEGIN"))
    assert wire.kinds(run(connection, wire.bind("later", portal="across") + wire.SYNC)) == "2Z"
    assert claims_in(run(connection, wire.execute("across") + wire.SYNC)) == ["acme"]
    run(connection, wire.query("COMMIT"))
    connection.close()


@pytest.mark.parametrize("sql, rule", [
    ("BEGIN; SELECT 1", "stmt.multiple"),
    ("SELECT 1; COMMIT AND CHAIN", "stmt.multiple"),
    ("SAVEPOINT s", "stmt.savepoint"),
    ("RELEASE SAVEPOINT s", "stmt.savepoint"),
    ("ROLLBACK TO SAVEPOINT s", "stmt.savepoint"),
    ("PREPARE TRANSACTION 'x'", "stmt.prepare-transaction"),
    ("COMMIT PREPARED 'x'", "stmt.prepare-transaction"),
    ("BEGIN READ WRITE", "stmt.read-write"),
    # Its predicate locks cover pages of other tenants' rows (seventeenth red team).
    ("BEGIN ISOLATION LEVEL SERIALIZABLE", "stmt.serializable"),
    ("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE", "stmt.serializable"),
    ("CALL p()", "stmt.call"),
    ("DO $$ BEGIN COMMIT; END $$", "stmt.do"),
    ("EXECUTE s", "stmt.prepare"),
])
def test_other_ways_to_start_or_end_a_transaction_are_denied(palisade, keys, sql, rule):
    connection = connect(palisade, keys)
    for data in (wire.query(sql), wire.parse(sql) + wire.SYNC):
        messages = run(connection, data)
        assert wire.kinds(messages) == "EZ" and rule in error(messages)["D"], (sql, messages)
    assert claims_in(run(connection, wire.query(CLAIM))) == ["acme"]
    connection.close()
