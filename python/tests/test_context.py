"""Request context: the client's address and port, the scheme (TLS, trusted proxies'
headers), the server's address, and the root path, in WSGI environ and ASGI scope."""

import json
import socket
import ssl
import subprocess

import pytest

from conftest import read_response, run_cli, worker_pids


def get_json(server, path, headers=(), wrap=None):
    """GET `path` on a new connection; returns (JSON body, the client's local port)."""
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock = wrap(raw) if wrap else raw
    with sock:
        lines = [f"GET {path} HTTP/1.1", "Host: x", "Connection: close", *headers]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        port = sock.getsockname()[1]
        status, _, body, _ = read_response(sock)
        assert status == 200, body
        return json.loads(body), port


def test_wsgi_remote_addr_and_port(serve):
    server = serve("wsgi_app:app")
    env, port = get_json(server, "/environ")
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("127.0.0.1", str(port))
    assert env["wsgi.url_scheme"] == "http"


def test_asgi_client_and_server(serve):
    server = serve("asgi_app:app", interface="asgi")
    scope, port = get_json(server, "/scope")
    assert scope["client"] == ["127.0.0.1", port]
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["scheme"] == "http"


def test_trusted_proxy_headers_set_client_and_scheme(serve):
    server = serve("wsgi_app:app")  # 127.0.0.1 is trusted by default, as uvicorn
    env, _ = get_json(server, "/environ", ["X-Forwarded-For: 6.6.6.6, 1.2.3.4",
                                           "X-Forwarded-Proto: https"])
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("1.2.3.4", "https")
    asgi = serve("asgi_app:app", interface="asgi")
    scope, _ = get_json(asgi, "/scope", ['Forwarded: for="9.9.9.9:55";proto=https'])
    assert (scope["client"], scope["scheme"]) == (["9.9.9.9", 0], "https")


def test_no_proxy_headers_trusts_none(serve):
    server = serve("wsgi_app:app", extra=["--no-proxy-headers"])  # uvicorn's
    env, _ = get_json(server, "/environ", ["X-Forwarded-For: 1.2.3.4", "X-Forwarded-Proto: https"])
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("127.0.0.1", "http")


def test_untrusted_peer_headers_are_ignored(serve):
    server = serve("wsgi_app:app", extra=["--forwarded-allow-ips", "10.0.0.0/8"])
    env, _ = get_json(server, "/environ", ["X-Forwarded-For: 1.2.3.4",
                                           "X-Forwarded-Proto: https"])
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("127.0.0.1", "http")


def test_root_path(serve):
    server = serve("wsgi_app:app", extra=["--root-path", "/api/"])
    env, _ = get_json(server, "/api/environ")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/api", "/environ")
    asgi = serve("asgi_app:app", interface="asgi", extra=["--root-path", "/api"])
    scope, _ = get_json(asgi, "/api/scope")
    assert (scope["root_path"], scope["path"]) == ("/api", "/api/scope")
    scope, _ = get_json(asgi, "/scope")  # a path outside the root gets it prefixed
    assert scope["path"] == "/api/scope"


@pytest.fixture
def certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


def test_https_scheme_under_tls(serve, certificate):
    cert, key = certificate
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    wrap = lambda sock: context.wrap_socket(sock, server_hostname="localhost")  # noqa: E731
    tls = ["--ssl-certfile", cert, "--ssl-keyfile", key]
    server = serve("wsgi_app:app", extra=tls)
    assert f"on https://127.0.0.1:{server.port}" in server.wait_for("serving")[0]
    env, port = get_json(server, "/environ", wrap=wrap)
    assert (env["wsgi.url_scheme"], env["REMOTE_PORT"]) == ("https", str(port))
    asgi = serve("asgi_app:app", interface="asgi", extra=tls)
    scope, _ = get_json(asgi, "/scope", wrap=wrap)
    assert scope["scheme"] == "https"


@pytest.fixture
def client_certificates(tmp_path):
    """A CA, a client certificate it signed and one another CA signed (openssl), as
    (ca.pem, (cert, key) ours, (cert, key) a stranger's)."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    (tmp_path / "client.ext").write_text("extendedKeyUsage=clientAuth\n")

    def authority(name):
        key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
        openssl("req", "-x509", *ec, "-days", "1", "-subj", f"/CN={name}",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign", "-keyout", str(key), "-out", str(cert))
        return cert, key

    def client(name, ca):
        key, csr, cert = (tmp_path / f"{name}.{ext}" for ext in ("key", "csr", "pem"))
        openssl("req", "-new", *ec, "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
        openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
                "-set_serial", "7", "-days", "1", "-extfile", str(tmp_path / "client.ext"),
                "-out", str(cert))
        return str(cert), str(key)

    ours, theirs = authority("ca"), authority("stranger")
    return str(ours[0]), client("alice", ours), client("mallory", theirs)


def tls_wrap(client_cert=None):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if client_cert:
        context.load_cert_chain(*client_cert)
    return lambda sock: context.wrap_socket(sock, server_hostname="localhost")


def refused(server, path, client_cert=None):
    try:
        get_json(server, path, wrap=tls_wrap(client_cert))
    except (ssl.SSLError, ConnectionError, ValueError):
        return True
    return False


def test_required_client_certificates_reach_wsgi_apps(serve, certificate, client_certificates):
    ca, alice, mallory = client_certificates
    server = serve("wsgi_app:app", extra=["--ssl-certfile", certificate[0], "--ssl-keyfile",
                                          certificate[1], "--ssl-ca-certs", ca])
    env, _ = get_json(server, "/environ", wrap=tls_wrap(alice))
    presented = ssl.PEM_cert_to_DER_cert(open(alice[0]).read())
    assert ssl.PEM_cert_to_DER_cert(env["SSL_CLIENT_CERT"]) == presented
    assert env["SSL_CLIENT_S_DN"] == "CN=alice"
    assert refused(server, "/environ")
    assert refused(server, "/environ", mallory)
    assert get_json(server, "/environ", wrap=tls_wrap(alice))[0]["wsgi.url_scheme"] == "https"


def test_optional_client_certificates_in_the_asgi_tls_extension(serve, certificate,
                                                                client_certificates):
    ca, alice, mallory = client_certificates
    server = serve("asgi_app:app", interface="asgi",
                   extra=["--ssl-certfile", certificate[0], "--ssl-keyfile", certificate[1],
                          "--ssl-ca-certs", ca, "--ssl-cert-reqs", "1"])
    scope, _ = get_json(server, "/scope", wrap=tls_wrap())
    assert scope["extensions"]["tls"]["client_cert_chain"] == []
    assert scope["extensions"]["tls"]["client_cert_name"] is None
    assert "http.response.pathsend" in scope["extensions"]
    scope, _ = get_json(server, "/scope", wrap=tls_wrap(alice))
    chain = scope["extensions"]["tls"]["client_cert_chain"]
    presented = ssl.PEM_cert_to_DER_cert(open(alice[0]).read())
    assert [ssl.PEM_cert_to_DER_cert(pem) for pem in chain] == [presented]
    assert scope["extensions"]["tls"]["client_cert_name"] == "CN=alice"
    assert refused(server, "/scope", mallory)


def test_granians_client_ca_verifies_presented_certificates_and_requires_one_with_verify(
        serve, certificate, client_certificates):
    ca, alice, mallory = client_certificates
    tls = ["--ssl-certificate", certificate[0], "--ssl-keyfile", certificate[1], "--ssl-ca", ca]
    optional = serve("wsgi_app:app", extra=tls)
    assert get_json(optional, "/environ", wrap=tls_wrap())[0].get("SSL_CLIENT_CERT") is None
    assert get_json(optional, "/environ", wrap=tls_wrap(alice))[0]["SSL_CLIENT_S_DN"] == "CN=alice"
    assert refused(optional, "/environ", mallory)
    required = serve("wsgi_app:app", extra=[*tls, "--ssl-client-verify"])
    assert get_json(required, "/environ", wrap=tls_wrap(alice))[0]["SSL_CLIENT_S_DN"] == "CN=alice"
    assert refused(required, "/environ")
    assert refused(required, "/environ", mallory)


def test_plaintext_scopes_have_no_tls_extension(serve):
    scope, _ = get_json(serve("asgi_app:app", interface="asgi"), "/scope")
    assert "tls" not in scope["extensions"]


def test_a_config_file_may_leave_a_key_to_a_flag(serve, certificate, tmp_path):
    # The certificate in the file, its key from the command line: checked together.
    config = tmp_path / "haywire.toml"
    config.write_text(f'[tls]\ncert = "{certificate[0]}"\n')
    server = serve("wsgi_app:app", config=str(config), extra=["--ssl-keyfile", certificate[1]])
    env, _ = get_json(server, "/environ", wrap=tls_wrap())
    assert env["wsgi.url_scheme"] == "https"


@pytest.fixture
def encrypted_key(tmp_path, certificate):
    """The certificate's key encrypted with a password, as OpenSSL 3 writes one."""
    key = tmp_path / "encrypted.pem"
    subprocess.run(["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", certificate[1],
                    "-out", str(key), "-passout", "pass:hunter2 x"], check=True, capture_output=True)
    assert "ENCRYPTED PRIVATE KEY" in key.read_text()
    return str(key)


def test_an_encrypted_key_with_its_password_and_the_password_kept_off_command_lines(
        serve, certificate, encrypted_key):
    server = serve("wsgi_app:app", workers=2,
                   extra=["--ssl-certfile", certificate[0], "--ssl-keyfile", encrypted_key,
                          "--ssl-keyfile-password", "hunter2 x"])
    seen, _ = get_json(server, "/os-environ", wrap=tls_wrap())
    assert "hunter2" not in json.dumps(seen)  # neither the app nor its child processes
    workers = worker_pids(server)
    assert len(workers) == 2
    for pid in workers:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert b"hunter2" not in f.read()


def test_an_encrypted_key_without_its_password_exits_2_naming_the_key(certificate, encrypted_key):
    for password in ([], ["--ssl-keyfile-password", "wrong"]):
        result = run_cli("--ssl-certfile", certificate[0], "--ssl-keyfile", encrypted_key,
                         *password, "wsgi_app:app")
        assert result.returncode == 2, result.stderr
        assert "tls.key" in result.stderr and "key_password" in result.stderr, result.stderr


def test_ssl_protocol_min_tls1_3_refuses_tls_1_2_clients(serve, certificate):
    server = serve("wsgi_app:app", extra=["--ssl-certfile", certificate[0], "--ssl-keyfile",
                                          certificate[1], "--ssl-protocol-min", "tls1.3"])
    assert get_json(server, "/environ", wrap=tls_wrap())[0]["wsgi.url_scheme"] == "https"
    old = ssl.create_default_context()
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionError)):
        get_json(server, "/environ", wrap=lambda sock: old.wrap_socket(sock, server_hostname="localhost"))


def test_ssl_ciphers_limits_the_tls_1_2_suites_and_leaves_tls_1_3(serve, certificate):
    # OpenSSL's selection syntax, as uvicorn takes it: the ECDHE AES-GCM suites but
    # those with 128-bit keys.
    server = serve("wsgi_app:app", extra=["--ssl-certfile", certificate[0], "--ssl-keyfile",
                                          certificate[1], "--ssl-ciphers",
                                          "ECDHE+AESGCM:!AES128"])

    def served(suite: str, version: ssl.TLSVersion) -> bool:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.maximum_version = version
        context.set_ciphers(suite)
        wrap = lambda sock: context.wrap_socket(sock, server_hostname="localhost")  # noqa: E731
        try:
            return get_json(server, "/environ", wrap=wrap)[0]["wsgi.url_scheme"] == "https"
        except (ssl.SSLError, ConnectionError):
            return False

    assert served("ECDHE-ECDSA-AES256-GCM-SHA384", ssl.TLSVersion.TLSv1_2)
    assert not served("ECDHE-ECDSA-AES128-GCM-SHA256", ssl.TLSVersion.TLSv1_2)
    assert not served("ECDHE-ECDSA-CHACHA20-POLY1305", ssl.TLSVersion.TLSv1_2)
    assert served("ECDHE-ECDSA-AES128-GCM-SHA256", ssl.TLSVersion.TLSv1_3)  # TLS 1.3: all
    unknown = run_cli("--ssl-certfile", certificate[0], "--ssl-keyfile", certificate[1],
                      "--ssl-ciphers", "DHE-RSA-AES128-GCM-SHA256", "wsgi_app:app")
    assert unknown.returncode == 2 and "--ssl-ciphers" in unknown.stderr, unknown.stderr
    assert "ECDHE-RSA-AES128-GCM-SHA256" in unknown.stderr  # the names it has


# The IANA codes of the suites OpenSSL may pick with an ECDSA certificate, by its names.
SUITES = {
    "TLS_AES_128_GCM_SHA256": 0x1301, "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303, "ECDHE-ECDSA-AES128-GCM-SHA256": 0xC02B,
    "ECDHE-ECDSA-AES256-GCM-SHA384": 0xC02C, "ECDHE-ECDSA-CHACHA20-POLY1305": 0xCCA9,
}


def test_the_tls_version_and_cipher_suite_reach_the_app(serve, certificate):
    tls = ["--ssl-certfile", certificate[0], "--ssl-keyfile", certificate[1]]
    wsgi = serve("wsgi_app:app", extra=tls)
    asgi = serve("asgi_app:app", interface="asgi", extra=tls)
    for maximum, name, code in ((ssl.TLSVersion.TLSv1_3, "TLSv1.3", 0x0304),
                                (ssl.TLSVersion.TLSv1_2, "TLSv1.2", 0x0303)):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.maximum_version = maximum
        negotiated = []

        def wrap(sock):
            wrapped = context.wrap_socket(sock, server_hostname="localhost")
            negotiated.append((wrapped.version(), wrapped.cipher()[0]))
            return wrapped

        env, _ = get_json(wsgi, "/environ", wrap=wrap)
        assert env["SSL_PROTOCOL"] == name == negotiated[-1][0]
        scope, _ = get_json(asgi, "/scope", wrap=wrap)
        extension = scope["extensions"]["tls"]
        assert extension["tls_version"] == code
        with open(certificate[0]) as f:
            assert extension["server_cert"] == f.read()  # the file holds the leaf alone
        assert extension["cipher_suite"] == SUITES[negotiated[-1][1]], negotiated
    env, _ = get_json(serve("wsgi_app:app"), "/environ")
    assert "SSL_PROTOCOL" not in env
