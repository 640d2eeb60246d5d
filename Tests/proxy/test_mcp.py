"""Issue 19: `palisade mcp`, the same firewall for agents that speak the Model Context Protocol.

The official Python MCP client (`mcp` from PyPI) is the agent, over stdio (the process's
PALISADE_CREDENTIAL) and over Streamable HTTP (a Bearer credential on every request), against
docker/demo.sql: two tenants whose rows row-level security keeps apart.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import pathlib
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from conftest import BINARY, ROOT, create_key, free_port


def audit(*arguments):
    return subprocess.run([BINARY, "audit", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=60)


def entries(directory):
    result = audit("list", "--json", str(directory))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


class Setup:
    def __init__(self, backend, workdir, audit_key):
        key_file = workdir / "mcp-keys.yaml"
        self.keys = {"acme": create_key(key_file, "acme"), "globex": create_key(key_file, "globex"),
                     "analyst": create_key(key_file, "acme", "analyst")}
        self.stdio_audit = pathlib.Path(tempfile.mkdtemp(prefix="palisade-mcp-stdio."))
        self.http_audit = pathlib.Path(tempfile.mkdtemp(prefix="palisade-mcp-http."))
        self.audit_key = audit_key
        self.arguments = ["--backend", backend, "--api-keys", str(key_file), "--lockout-denials", "1000",
                          "--audit-key", str(audit_key[0]), "--audit-checkpoint-seconds", "1"]


@pytest.fixture(scope="module")
def setup(tenant_database, workdir, audit_key):
    return Setup(tenant_database, workdir, audit_key)


class HTTPServer:
    """`palisade mcp --mcp-listen`, started and waited for as conftest's Palisade starts `serve`."""

    def __init__(self, setup, *extra, audit_dir=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.log = pathlib.Path(tempfile.mkstemp(prefix="palisade-mcp.", suffix=".log")[1])
        self.audit_dir = audit_dir or pathlib.Path(tempfile.mkdtemp(prefix="palisade-mcp-http."))
        self.process = subprocess.Popen(
            [BINARY, "mcp", "--mcp-listen", f"127.0.0.1:{self.port}", "--tls-mode", "disable", "--audit-dir", str(self.audit_dir),
             *setup.arguments, *extra], cwd=ROOT, stdout=self.log.open("w"), stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while "listening" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"palisade mcp did not start: {self.log.read_text()}")
            time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def http_server(setup):
    server = HTTPServer(setup, audit_dir=setup.http_audit)
    yield server
    if server.process.poll() is None:
        server.stop()


def started(setup, *extra):
    server = HTTPServer(setup, *extra)
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.fixture
def short_timeout_server(setup):
    yield from started(setup, "--login-timeout", "1")


@pytest.fixture
def capped_server(setup):
    yield from started(setup, "--max-client-connections", "2")


@pytest.fixture
def jwt_server(setup, workdir):
    secret = workdir / "mcp-jwt.secret"
    secret.write_text("mcp-test-secret-0123456789abcdef0123456789abcdef\n")
    server_gen = started(setup, "--jwt-secret-file", str(secret), "--lockout-denials", "3")
    server = next(server_gen)
    server.secret = secret.read_text().strip().encode()
    yield server
    next(server_gen, None)


def stdio_session(setup, credential):
    """Runs `body(session)` against `palisade mcp` over stdio with `credential`."""
    parameters = StdioServerParameters(
        command=BINARY, args=["mcp", "--audit-dir", str(setup.stdio_audit), *setup.arguments], cwd=str(ROOT),
        env={"PALISADE_CREDENTIAL": credential})

    def run(body):
        async def main():
            async with stdio_client(parameters) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await body(session)
        return asyncio.run(main())
    return run


def http_session(server, credential):
    def run(body):
        async def main():
            client = create_mcp_http_client(headers={"Authorization": f"Bearer {credential}"})
            async with client:
                async with streamable_http_client(server.url, http_client=client) as (read, write):
                    async with ClientSession(read, write) as session:
                        await session.initialize()
                        return await body(session)
        return asyncio.run(main())
    return run


def text(result):
    return "".join(part.text for part in result.content if part.type == "text")


def rows(result):
    assert not result.is_error, text(result)
    return json.loads(text(result))


def test_stdio_lists_the_tools_with_their_schemas(setup):
    async def body(session):
        return (await session.list_tools()).tools
    tools = {tool.name: tool for tool in stdio_session(setup, setup.keys["acme"])(body)}
    # The agent profile does not admit EXPLAIN, so it is not offered.
    assert set(tools) == {"query", "list_tables", "describe_table", "check"}
    assert tools["query"].input_schema["required"] == ["sql"]
    assert tools["describe_table"].input_schema["properties"]["table"]["type"] == "string"
    assert "row-level security" in tools["query"].description
    assert tools["query"].annotations.read_only_hint is True


def test_stdio_query_returns_rows_with_column_names_and_types(setup):
    async def body(session):
        return (await session.call_tool("query", {"sql": "SELECT id, amount, placed_at, tenant_id = 'acme' AS mine FROM orders ORDER BY id LIMIT 2"}),
                await session.call_tool("query", {"sql": "SELECT count(*) FROM orders"}))
    first, count = stdio_session(setup, setup.keys["acme"])(body)
    answer = rows(first)
    assert answer["columns"] == [{"name": "id", "type": "int4"}, {"name": "amount", "type": "numeric"},
                                 {"name": "placed_at", "type": "timestamptz"}, {"name": "mine", "type": "bool"}]
    assert [row[0] for row in answer["rows"]] == [1, 2] and answer["rows"][0][3] is True
    assert isinstance(answer["rows"][0][1], int) and isinstance(answer["rows"][0][2], str)
    assert answer["row_count"] == 2 and answer["request_id"]
    assert rows(count)["rows"] == [[120]]


def test_a_refused_delete_is_a_tool_error_with_its_rule(setup):
    async def body(session):
        return (await session.call_tool("query", {"sql": "DELETE FROM orders WHERE id = 1"}),
                await session.call_tool("query", {"sql": "SELECT 1; COMMIT"}),
                await session.call_tool("query", {"sql": "COMMIT"}),
                await session.call_tool("query", {"sql": "SELECT count(*) FROM orders"}))
    delete, stacked, commit, after = stdio_session(setup, setup.keys["acme"])(body)
    assert delete.is_error
    message = text(delete)
    assert "rule stmt.dml" in message and "SQLSTATE 42501" in message and "request " in message and "Hint:" in message
    assert delete.structured_content["rule"] == "stmt.dml" and delete.structured_content["hint"]
    assert stacked.is_error and "stmt.multiple" in text(stacked)
    # Transaction control is admitted on the wire, but would end the call's read-only transaction here.
    assert commit.is_error and "stmt.transaction" in text(commit)
    assert rows(after)["rows"] == [[120]]


def test_two_tenants_see_only_their_own_rows_over_stdio(setup):
    sql = "SELECT tenant_id, count(*) FROM orders GROUP BY tenant_id"

    async def body(session):
        return rows(await session.call_tool("query", {"sql": sql}))["rows"]
    assert stdio_session(setup, setup.keys["acme"])(body) == [["acme", 120]]
    assert stdio_session(setup, setup.keys["globex"])(body) == [["globex", 80]]


def test_list_tables_describe_table_and_check(setup):
    async def body(session):
        return (await session.call_tool("list_tables", {}),
                await session.call_tool("describe_table", {"table": "orders"}),
                await session.call_tool("describe_table", {"table": "public.no_such_table"}),
                await session.call_tool("describe_table", {"tabel": "orders"}),
                await session.call_tool("check", {"sql": "SELECT pg_read_file('/etc/passwd')"}),
                await session.call_tool("check", {"sql": "SELECT id FROM orders"}))
    tables, orders, missing, misspelled, refused, admitted = stdio_session(setup, setup.keys["acme"])(body)
    listed = rows(tables)
    assert [row[:3] for row in listed["rows"]] == [["public", "customers", "BASE TABLE"], ["public", "invoices", "BASE TABLE"],
                                                   ["public", "order_totals", "VIEW"], ["public", "orders", "BASE TABLE"]]
    described = json.loads(text(orders))
    assert described["schema"] == "public" and described["table"] == "orders"
    assert [(c["name"], c["type"], c["nullable"]) for c in described["columns"]] == [
        ("tenant_id", "text", False), ("id", "integer", False), ("customer_id", "integer", False),
        ("amount", "numeric", False), ("placed_at", "timestamp with time zone", False)]
    assert described["primary_key"] == ["tenant_id", "id"]
    assert described["foreign_keys"] == [{"columns": ["tenant_id", "customer_id"],
                                          "references": {"schema": "public", "table": "customers", "columns": ["tenant_id", "id"]}}]
    assert missing.is_error and "list_tables" in text(missing)
    assert misspelled.is_error and "'tabel'" in text(misspelled)
    decision = json.loads(text(refused))
    assert decision["allowed"] is False and decision["rule"] == "fn.forbidden" and decision["hint"]
    assert json.loads(text(admitted))["allowed"] is True


def test_explain_for_a_profile_that_admits_it_shows_no_costs(setup):
    async def body(session):
        names = {tool.name for tool in (await session.list_tools()).tools}
        return names, await session.call_tool("explain", {"sql": "SELECT * FROM orders WHERE id = 3"})
    names, plan = stdio_session(setup, setup.keys["analyst"])(body)
    assert "explain" in names
    assert not plan.is_error, text(plan)
    assert "orders" in text(plan) and "cost=" not in text(plan)


def test_an_answer_over_max_rows_is_refused_with_54000(setup):
    async def body(session):
        return await session.call_tool("query", {"sql": "SELECT g FROM generate_series(1, 20000) AS g"})
    result = stdio_session(setup, setup.keys["acme"])(body)
    assert result.is_error and "limit.result-rows" in text(result) and "54000" in text(result)


def test_a_query_over_the_cost_budget_is_refused_before_it_runs(setup):
    # 1000 × 1000 × 100 estimated rows, over the agent profile's max_estimated_rows of 10,000,000; a
    # join on a key, estimated too, runs.
    # An aggregate given 1 KiB of the text's making for each of a million generated rows (1 GB) is
    # refused at the same estimate.
    async def body(session):
        return (await session.call_tool("query", {"sql": "SELECT count(*) FROM orders a, generate_series(1, 1000000) g, generate_series(1, 100) h"}),
                await session.call_tool("query", {"sql": "SELECT count(*) FROM orders o JOIN customers c ON c.tenant_id = o.tenant_id AND c.id = o.customer_id"}),
                await session.call_tool("query", {"sql": "SELECT length(string_agg(repeat('x', 1000), '')) FROM generate_series(1, 1000000)"}))
    refused, joined, accumulated = stdio_session(setup, setup.keys["acme"])(body)
    assert refused.is_error and "SQLSTATE 54000" in text(refused), text(refused)
    assert refused.structured_content["rule"] in ("limit.cost", "limit.estimated-rows")
    assert rows(joined)["rows"] == [[120]]
    assert accumulated.is_error and accumulated.structured_content["rule"] == "limit.argument", text(accumulated)
    assert "every input row" in text(accumulated)


def test_stdio_refuses_a_missing_or_bad_credential(setup):
    command = [BINARY, "mcp", "--audit-dir", str(setup.stdio_audit), *setup.arguments]
    for credential in ("", "pal_00000000_not-a-key"):
        environment = {key: value for key, value in os.environ.items() if key != "PALISADE_CREDENTIAL"}
        if credential:
            environment["PALISADE_CREDENTIAL"] = credential
        result = subprocess.run(command, cwd=ROOT, env=environment, input="", capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and result.stdout == ""
        assert "PALISADE_CREDENTIAL" in result.stderr


def test_http_lists_tools_and_keeps_tenants_apart(http_server, setup):
    sql = "SELECT tenant_id, count(*) FROM orders GROUP BY tenant_id"

    async def body(session):
        names = {tool.name for tool in (await session.list_tools()).tools}
        answer = rows(await session.call_tool("query", {"sql": sql}))["rows"]
        refused = await session.call_tool("query", {"sql": "DELETE FROM orders"})
        return names, answer, refused
    names, acme, refused = http_session(http_server, setup.keys["acme"])(body)
    assert names == {"query", "list_tables", "describe_table", "check"}
    assert acme == [["acme", 120]]
    assert refused.is_error and "rule stmt.dml" in text(refused)
    _, globex, _ = http_session(http_server, setup.keys["globex"])(body)
    assert globex == [["globex", 80]]


def post(url, headers):
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                  "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}
    request = urllib.request.Request(url, data=json.dumps(initialize).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_http_refuses_a_missing_or_bad_credential_with_401_json(http_server, setup):
    for headers in ({}, {"Authorization": "Bearer pal_00000000_not-a-key"}, {"Authorization": "Basic YWNtZTpzZWNyZXQ="}):
        status, response_headers, body = post(http_server.url, headers)
        assert status == 401, (headers, status, body)
        assert response_headers["Content-Type"] == "application/json"
        assert response_headers["WWW-Authenticate"].startswith("Bearer")
        refusal = json.loads(body)
        assert refusal["error"] == "invalid_token" and refusal["error_description"] and refusal["sqlstate"].startswith("28")
    status, _, _ = post(http_server.url, {"Authorization": f"Bearer {setup.keys['acme']}"})
    assert status == 200


def test_an_http_session_belongs_to_the_credential_that_opened_it(http_server, setup):
    status, headers, _ = post(http_server.url, {"Authorization": f"Bearer {setup.keys['acme']}"})
    assert status == 200
    session_id = headers["Mcp-Session-Id"]
    assert len(session_id) == 32  # 128 random bits
    request = urllib.request.Request(http_server.url, method="DELETE", headers={
        "Authorization": f"Bearer {setup.keys['globex']}", "Mcp-Session-Id": session_id, "MCP-Protocol-Version": "2025-06-18"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403
    request = urllib.request.Request(http_server.url, method="DELETE", headers={
        "Authorization": f"Bearer {setup.keys['acme']}", "Mcp-Session-Id": "0" * 32, "MCP-Protocol-Version": "2025-06-18"})
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(request, timeout=30)
    assert unknown.value.code == 404


def raw_exchange(port, data, timeout=60):
    """Sends `data` on a new connection and returns what the server answers before it closes the connection
    (or what came within `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return received, True
                received += chunk
                if b"\r\n\r\n" in received and received.startswith(b"HTTP/1.1 4"):
                    return received, False
        except socket.timeout:
            return received, False


def test_a_head_is_refused_on_its_credential_before_its_body_is_read(http_server, setup):
    # Sixteenth red team (rt19-mcp-preauth-body-memory): each anonymous connection held 1 MiB of body.
    head = (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{http_server.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {1 << 20}\r\n").encode()
    answer, _ = raw_exchange(http_server.port, head + b"\r\n", timeout=30)
    assert answer.startswith(b"HTTP/1.1 401"), answer
    assert b"connection: close" in answer.lower()
    answer, _ = raw_exchange(http_server.port, head.replace(b"Content-Length: 1048576", b"Content-Length: 2097152")
                             + f"Authorization: Bearer {setup.keys['acme']}\r\n\r\n".encode(), timeout=30)
    assert answer.startswith(b"HTTP/1.1 413"), answer


def test_an_unfinished_request_is_closed_after_the_request_timeout(short_timeout_server, setup):
    # Sixteenth red team (rt19-mcp-unauthenticated-connection-exhaustion): half-sent requests were held for ever.
    # --login-timeout 1; each connection is given a minute to be closed.
    port = short_timeout_server.port
    _, closed = raw_exchange(port, f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-a: ".encode())
    assert closed
    body = b'{"jsonrpc":"2.0","id":1,"method":"initialize"'
    _, closed = raw_exchange(port, (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {setup.keys['acme']}\r\n"
                                    f"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n").encode() + body)
    assert closed


def test_connections_over_the_limit_are_answered_503(capped_server, setup):
    # --max-client-connections 2.
    port = capped_server.port
    held = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(2)]
    try:
        # The two held connections are answered (400: no session) and kept: the server has taken them in.
        for sock in held:
            sock.sendall(f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {setup.keys['acme']}\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 400")
        answer, closed = raw_exchange(port, f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 503") and b"max_client_connections" in answer and closed, answer
    finally:
        for sock in held:
            sock.close()
    # Once they are closed, a new connection is served again.
    deadline = time.monotonic() + 60
    while True:
        answer, _ = raw_exchange(port, f"GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        if answer.startswith(b"HTTP/1.1 404") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answer.startswith(b"HTTP/1.1 404"), answer


def jwt(secret, payload):
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    signed = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(payload).encode())
    return signed + "." + b64(hmac.new(secret, signed.encode(), hashlib.sha256).digest())


def rpc(url, credential, session_id, method, params, id=2):
    """One JSON-RPC request in a session: (status, the answer's message or None)."""
    message = {"jsonrpc": "2.0", "method": method, "params": params, **({"id": id} if id is not None else {})}
    request = urllib.request.Request(url, data=json.dumps(message).encode(), method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream", "Authorization": f"Bearer {credential}",
        "Mcp-Session-Id": session_id, "MCP-Protocol-Version": "2025-06-18"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as error:
        return error.code, None
    data = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]
    return status, (data[-1] if data else (json.loads(text) if text.strip().startswith("{") else None))


def open_session(url, credential):
    status, headers, _ = post(url, {"Authorization": f"Bearer {credential}"})
    assert status == 200
    session_id = headers["Mcp-Session-Id"]
    rpc(url, credential, session_id, "notifications/initialized", {}, id=None)
    return session_id


def test_a_session_is_bound_to_the_whole_verified_identity(jwt_server):
    # Sixteenth red team (rt19-mcp-session-bound-to-jti-not-tenant): a JWT's credential id is its issuer and
    # jti, and another tenant's token with the same jti read the first tenant's rows on its session.
    expires = int(time.time()) + 600
    acme = jwt(jwt_server.secret, {"tenant_id": "acme", "sub": "alice", "jti": "1", "exp": expires})
    globex = jwt(jwt_server.secret, {"tenant_id": "globex", "sub": "mallory", "jti": "1", "exp": expires})
    session_id = open_session(jwt_server.url, acme)
    count = {"name": "query", "arguments": {"sql": "SELECT min(tenant_id) FROM orders"}}
    status, answer = rpc(jwt_server.url, acme, session_id, "tools/call", count)
    assert status == 200 and json.loads(answer["result"]["content"][0]["text"])["rows"] == [["acme"]]
    status, answer = rpc(jwt_server.url, globex, session_id, "tools/call", count)
    assert status == 403 and answer is None
    refusals = [e for e in entries(jwt_server.audit_dir) if e.get("message_kind") == "mcp/http/session"]
    assert refusals and refusals[-1]["tenant"] == "globex" and refusals[-1]["event"] == "auth_failure"


def test_denials_of_check_and_unknown_sessions_count_toward_the_lockout(jwt_server, setup):
    # Sixteenth red team (rt19-lockout-not-shared-between-doors, the MCP part): check's denials counted toward nothing.
    # --lockout-denials 3.
    key = setup.keys["analyst"]
    session_id = open_session(jwt_server.url, key)
    for _ in range(2):
        status, answer = rpc(jwt_server.url, key, session_id, "tools/call", {"name": "check", "arguments": {"sql": "DELETE FROM orders"}})
        assert status == 200 and json.loads(answer["result"]["content"][0]["text"])["allowed"] is False
    # A request naming no session this key holds counts too: the third denial.
    assert rpc(jwt_server.url, key, "f" * 32, "tools/call", {"name": "query", "arguments": {"sql": "SELECT 1"}})[0] == 404
    status, answer = rpc(jwt_server.url, key, session_id, "tools/call", {"name": "query", "arguments": {"sql": "SELECT 1"}})
    assert status == 401 or "auth.locked" in answer["result"]["content"][0]["text"], answer
    assert any(e["event"] == "lockout" for e in entries(jwt_server.audit_dir))


def test_max_result_bytes_bounds_the_answer_as_it_is_sent(http_server, setup):
    # Sixteenth red team (rt19-mcp-result-bytes-escape): 8 MB of rows of \x01 came back as a 56 MB answer.
    # 8 x 200,000 bytes = 1.6 MB of rows, under max_result_bytes (8 MiB); sent as 7 bytes each, 11.2 MB.
    # (8 x 10,000 is answered: 560 KB, under the Python client's own limit of 1 MiB an event.)
    sql = "SELECT repeat(E'\\x01', 200000) AS x FROM generate_series(1, 8)"

    async def body(session):
        return await session.call_tool("query", {"sql": sql}), await session.call_tool("query", {"sql": sql.replace("200000", "10000")})
    over, under = http_session(http_server, setup.keys["acme"])(body)
    assert over.is_error and "rule limit.result-bytes" in text(over), text(over)[:300]
    assert len(rows(under)["rows"]) == 8


def test_the_audit_logs_verify_and_hold_the_mcp_entries(http_server, setup):
    # Runs last in this module: stopping the HTTP server closes and signs its log.
    http_server.stop()
    for directory in (setup.stdio_audit, setup.http_audit):
        verified = audit("verify", "--key", setup.audit_key[1], str(directory))
        assert verified.returncode == 0, verified.stdout + verified.stderr
    stdio = entries(setup.stdio_audit)
    http = entries(setup.http_audit)
    kinds = {entry["message_kind"] for entry in stdio + http if entry.get("message_kind")}
    assert {"mcp/stdio/query", "mcp/stdio/list_tables", "mcp/stdio/describe_table", "mcp/stdio/check", "mcp/stdio/explain",
            "mcp/http/query", "mcp/http/login"} <= kinds
    denied = [e for e in stdio if e["message_kind"] == "mcp/stdio/query" and e["rule"] == "stmt.dml"]
    assert denied and denied[0]["decision"] == "deny" and denied[0]["tenant"] == "acme" and denied[0]["request_id"]
    assert {e["tenant"] for e in http if e["message_kind"] == "mcp/http/query"} == {"acme", "globex"}
    assert any(e["event"] == "result_limit" and e["rule"] == "limit.result-rows" for e in stdio)
    assert any(e["event"] == "cost_limit" and e["message_kind"] == "mcp/stdio/query" for e in stdio)
    assert any(e["event"] == "auth_failure" and e["message_kind"] == "mcp/http/login" for e in http)
    assert any(e["event"] == "auth_failure" and e["message_kind"] == "mcp/stdio/login" for e in stdio)
    assert any(e["event"] == "result_limit" and e["rule"] == "limit.result-bytes" and e["message_kind"] == "mcp/http/query" for e in http)
    assert any(e["event"] == "auth_failure" and e["message_kind"] == "mcp/http/session" for e in http)
