//! TLS as a transport: a connection's socket plus a sans-I/O `rustls::ServerConnection`.
//!
//! The connection loop (`conn.rs`) reads and writes through [`Transport`];
//! [`TlsStream`] implements it by moving records between the socket and rustls: `read_tls` / `process_new_packets` /
//! `reader` on the way in, `writer` / `write_tls` on the way out.
//!
//! Each shard builds its own `ServerConfig` with its own session cache (no lock shared
//! between shards on a handshake); the ticket key is one per process, so a ticket a
//! client got from one shard resumes on any other (the kernel spreads a client's
//! connections over shards). A reload installs a new `ServerConfig` for new
//! connections; open connections keep the one they started with.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer,
};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{
    ProducesTickets, ServerSessionMemoryCache, VerifierBuilderError, WebPkiClientVerifier,
};
use rustls::{HandshakeKind, RootCertStore, ServerConfig, ServerConnection, SupportedCipherSuite};

use super::{Socket, Transport};
use crate::config::{ClientAuth, TlsConfig, TlsVersion};
use crate::http::{TlsInfo, TlsSession};

/// Sessions each shard remembers for TLS 1.2 session-id resumption.
const SESSIONS_PER_SHARD: usize = 4096;

/// A certificate chain and its private key, read from the `[tls]` files, and the
/// verifier of client certificates (`tls.client_ca`).
pub(crate) struct TlsKeys {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    clients: Option<Arc<dyn ClientCertVerifier>>,
    min_version: TlsVersion,
    /// `tls.ciphers`; `None`: the provider's every suite.
    ciphers: Option<Vec<SupportedCipherSuite>>,
}

/// A certificate or key file that cannot be used, naming its key (`tls.cert` or
/// `tls.key`); the configuration turns it into its own error.
#[derive(Debug)]
pub(crate) struct TlsFileError {
    /// `tls.cert`, `tls.key`, `tls.client_ca`, `tls.client_crl` or `tls.ciphers`.
    pub(crate) key: &'static str,
    /// What is wrong with the file.
    pub(crate) message: String,
}

impl TlsKeys {
    /// Reads the `[tls]` files; `None` when TLS is off (`cert` and `key` empty).
    /// Errors name the key whose file is missing, unreadable or unusable.
    pub(crate) fn load(tls: &TlsConfig) -> Result<Option<TlsKeys>, TlsFileError> {
        let error = |key: &'static str, message: String| TlsFileError { key, message };
        let (cert, key) = (tls.cert.as_str(), tls.key.as_str());
        match (cert.is_empty(), key.is_empty()) {
            (true, true) if tls.client_ca.is_empty() => return Ok(None),
            (true, true) => {
                return Err(error(
                    "tls.client_ca",
                    "needs tls.cert and tls.key (client certificates are a TLS matter)".into(),
                ))
            }
            (true, false) => return Err(error("tls.cert", "must be set with tls.key".into())),
            (false, true) => return Err(error("tls.key", "must be set with tls.cert".into())),
            (false, false) => {}
        }
        let cert_path = Path::new(cert);
        let certs = CertificateDer::pem_file_iter(cert_path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                error(
                    "tls.cert",
                    format!("cannot read a PEM certificate from {cert}: {e}"),
                )
            })?;
        if certs.is_empty() {
            return Err(error("tls.cert", format!("no PEM certificate in {cert}")));
        }
        let key_path = key;
        let key = read_key(key_path, &tls.key_password.0).map_err(|m| error("tls.key", m))?;
        let clients = client_verifier(tls)?;
        let ciphers =
            super::tls_suites::select(&tls.ciphers).map_err(|m| error("tls.ciphers", m))?;
        let keys = TlsKeys {
            certs,
            key,
            clients,
            min_version: tls.min_version,
            ciphers,
        };
        // Build once to catch a key that does not fit the certificate, or a key type
        // the provider cannot sign with.
        keys.server_config(ServerSessionMemoryCache::new(1))
            .map_err(|e| error("tls.key", format!("{key_path}: {e}")))?;
        Ok(Some(keys))
    }

    /// A server config for these keys: TLS 1.3, and 1.2 unless `tls.min_version` is
    /// 1.3; ALPN `http/1.1`, sessions kept in `sessions`, tickets sealed with the
    /// process-wide key.
    fn server_config(
        &self,
        sessions: Arc<ServerSessionMemoryCache>,
    ) -> Result<ServerConfig, rustls::Error> {
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(ciphers) = &self.ciphers {
            provider.cipher_suites.clone_from(ciphers);
        }
        let provider = Arc::new(provider);
        let versions: &[&rustls::SupportedProtocolVersion] = match self.min_version {
            TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let config =
            ServerConfig::builder_with_provider(provider).with_protocol_versions(versions)?;
        let config = match &self.clients {
            Some(verifier) => config.with_client_cert_verifier(verifier.clone()),
            None => config.with_no_client_auth(),
        };
        let mut config = config.with_single_cert(self.certs.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.session_storage = sessions;
        config.ticketer = ticketer()?;
        Ok(config)
    }
}

/// The subject of the certificate `der` as RFC 4514 text; `None` if it does not parse
/// (rustls has verified it, so it does).
fn subject(der: &[u8]) -> Option<Box<str>> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    Some(cert.tbs_certificate().subject().to_string().into())
}

/// The PEM label of an encrypted PKCS#8 key (RFC 5958), which `PrivateKeyDer` does
/// not read.
const ENCRYPTED_KEY: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";

/// The private key in the PEM file `path`, decrypted with `password` if it is an
/// encrypted PKCS#8 key (what `openssl genpkey -aes256` and OpenSSL 3's `req` write).
fn read_key(path: &str, password: &str) -> Result<PrivateKeyDer<'static>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read a PEM private key from {path}: {e}"))?;
    if let Some(start) = text.find(ENCRYPTED_KEY) {
        return decrypt_key(&text[start..], password).map_err(|e| format!("{path}: {e}"));
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(format!(
            "{path} is encrypted in OpenSSL's legacy format, which is not read; convert it to \
             PKCS#8: openssl pkcs8 -topk8 -v2 aes-256-cbc -in {path} -out new-key.pem"
        ));
    }
    PrivateKeyDer::from_pem_slice(text.as_bytes())
        .map_err(|e| format!("cannot read a PEM private key from {path}: {e}"))
}

/// Decrypts the PEM `ENCRYPTED PRIVATE KEY` at the start of `pem` (PBES2: PBKDF2 or
/// scrypt, AES-CBC or AES-GCM).
fn decrypt_key(pem: &str, password: &str) -> Result<PrivateKeyDer<'static>, String> {
    use pkcs8::der::SecretDocument;
    if password.is_empty() {
        return Err("the key is encrypted: set tls.key_password".into());
    }
    let (_, document) = SecretDocument::from_pem(pem)
        .map_err(|e| format!("not a readable encrypted PEM key: {e}"))?;
    let encrypted = pkcs8::EncryptedPrivateKeyInfoRef::try_from(document.as_bytes())
        .map_err(|e| format!("not a readable encrypted PEM key: {e}"))?;
    let key = encrypted
        .decrypt(password)
        .map_err(|e| format!("cannot decrypt the key with tls.key_password ({e})"))?;
    Ok(PrivatePkcs8KeyDer::from(key.as_bytes().to_vec()).into())
}

/// The verifier of client certificates signed by the CAs in `tls.client_ca` (`None`
/// when empty), requiring one unless `tls.client_auth` is optional, and refusing those
/// `tls.client_crl` revokes. Errors name the key at fault.
fn client_verifier(tls: &TlsConfig) -> Result<Option<Arc<dyn ClientCertVerifier>>, TlsFileError> {
    let ca = |message| TlsFileError {
        key: "tls.client_ca",
        message,
    };
    let crl = |message| TlsFileError {
        key: "tls.client_crl",
        message,
    };
    let crls = read_crls(tls).map_err(crl)?;
    let path = tls.client_ca.as_str();
    if path.is_empty() {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(Path::new(path))
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ca(format!("cannot read a PEM certificate from {path}: {e}")))?;
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| ca(format!("{path}: not a CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ca(format!("no PEM certificate in {path}")));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    if !crls.is_empty() {
        // As OpenSSL's CRL check: the client's own certificate, against its issuer's CRL
        // (a client whose issuer has none given is refused), which must be current (one
        // whose next update has passed refuses every client, as it does with OpenSSL).
        builder = builder
            .with_crls(crls)
            .only_check_end_entity_revocation()
            .enforce_revocation_expiration();
    }
    let builder = match tls.client_auth {
        ClientAuth::Required => builder,
        ClientAuth::Optional => builder.allow_unauthenticated(),
    };
    builder.build().map(Some).map_err(|e| match e {
        VerifierBuilderError::InvalidCrl(e) => {
            crl(format!("{}: not a usable CRL ({e:?})", tls.client_crl))
        }
        e => ca(format!("{path}: {e}")),
    })
}

/// The certificate revocation lists of `tls.client_crl` (PEM `X509 CRL` blocks), read
/// at start and at each reload; none when it is empty.
fn read_crls(tls: &TlsConfig) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let path = tls.client_crl.as_str();
    if path.is_empty() {
        return Ok(Vec::new());
    }
    if tls.client_ca.is_empty() {
        return Err("needs tls.client_ca (revocation is of client certificates)".into());
    }
    let crls = CertificateRevocationListDer::pem_file_iter(Path::new(path))
        .and_then(|crls| crls.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read a PEM CRL from {path}: {e}"))?;
    if crls.is_empty() {
        return Err(format!("no PEM CRL (X509 CRL) in {path}"));
    }
    for crl in &crls {
        if let Some(expired) = expired(crl) {
            return Err(format!(
                "{path}: the CRL of {expired}: refresh it (an expired CRL refuses every client)"
            ));
        }
    }
    Ok(crls)
}

/// Whose CRL `crl` is and when it expired, if its next update has passed; `None` when
/// it is current, has no next update, or does not parse (rustls then says why).
fn expired(crl: &CertificateRevocationListDer<'_>) -> Option<String> {
    use x509_cert::der::Decode;
    let list: x509_cert::crl::CertificateList = Decode::from_der(crl).ok()?;
    let next = list.tbs_cert_list.next_update?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    (next.to_unix_duration() < now)
        .then(|| format!("{} expired at {next}", list.tbs_cert_list.issuer))
}

/// The ticket sealer every shard shares, so a ticket resumes on whichever shard the
/// client's next connection reaches. It is touched once per handshake, never per request.
fn ticketer() -> Result<Arc<dyn ProducesTickets>, rustls::Error> {
    static TICKETER: OnceLock<Arc<dyn ProducesTickets>> = OnceLock::new();
    if let Some(ticketer) = TICKETER.get() {
        return Ok(ticketer.clone());
    }
    let made = rustls::crypto::ring::Ticketer::new()?;
    Ok(TICKETER.get_or_init(|| made).clone())
}

/// One shard's TLS state: the config new connections use (none: plaintext) and the
/// shard's own session cache, kept across reloads.
pub(crate) struct ShardTls {
    config: RefCell<Option<Arc<ServerConfig>>>,
    sessions: Arc<ServerSessionMemoryCache>,
}

impl Default for ShardTls {
    fn default() -> Self {
        ShardTls {
            config: RefCell::new(None),
            sessions: ServerSessionMemoryCache::new(SESSIONS_PER_SHARD),
        }
    }
}

impl ShardTls {
    /// Serves new connections with `keys` (TLS off with `None`). The keys were
    /// checked when loaded; should building fail anyway, the running config stays.
    pub(crate) fn install(&self, keys: Option<&TlsKeys>) {
        let config = match keys {
            None => None,
            Some(keys) => match keys.server_config(self.sessions.clone()) {
                Ok(config) => Some(Arc::new(config)),
                Err(e) => {
                    eprintln!("haywire: TLS config not applied, the running one stays: {e}");
                    return;
                }
            },
        };
        *self.config.borrow_mut() = config;
    }

    /// The config a new connection starts with; `None` when TLS is off.
    pub(crate) fn current(&self) -> Option<Arc<ServerConfig>> {
        self.config.borrow().clone()
    }

    /// Whether the listener speaks TLS now.
    pub(crate) fn enabled(&self) -> bool {
        self.config.borrow().is_some()
    }
}

/// A TLS connection: the socket and the rustls state over it.
pub(crate) struct TlsStream {
    socket: Socket,
    inner: RefCell<Inner>,
}

struct Inner {
    tls: ServerConnection,
    track: Track,
    /// The handshake's outcome has been counted.
    counted: bool,
}

/// What the raw input looked like: enough to tell plaintext HTTP and a truncated
/// record from other failures, which rustls reports alike.
#[derive(Default)]
struct Track {
    /// The connection's first byte, once read.
    first: Option<u8>,
    /// Bytes of the record header now arriving.
    header: [u8; 5],
    header_len: usize,
    /// Bytes still due in the record body now arriving.
    body_left: usize,
}

impl Track {
    fn saw(&mut self, mut bytes: &[u8]) {
        if self.first.is_none() {
            self.first = bytes.first().copied();
        }
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let take = self.body_left.min(bytes.len());
                self.body_left -= take;
                bytes = &bytes[take..];
                continue;
            }
            let take = (5 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
            self.header_len += take;
            bytes = &bytes[take..];
            if self.header_len == 5 {
                self.header_len = 0;
                self.body_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
            }
        }
    }

    /// Input ended inside a record.
    fn mid_record(&self) -> bool {
        self.header_len > 0 || self.body_left > 0
    }

    /// The client began with an ASCII letter: an HTTP method, not a TLS record.
    fn plaintext(&self) -> bool {
        self.first.is_some_and(|b| b.is_ascii_uppercase())
    }
}

impl TlsStream {
    /// Starts a server-side TLS session on `socket`.
    pub(crate) fn new(socket: Socket, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let tls = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsStream {
            socket,
            inner: RefCell::new(Inner {
                tls,
                track: Track::default(),
                counted: false,
            }),
        })
    }

    /// Writes queued records until none is left, or the socket is full.
    fn poll_send(&self, inner: &mut Inner, cx: &Context<'_>) -> Poll<io::Result<()>> {
        while inner.tls.wants_write() {
            match inner.tls.write_tls(&mut SocketWriter {
                socket: &self.socket,
                cx,
            }) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Gives plaintext to rustls with `write` once the records queued earlier are out
    /// (so what rustls holds stays within its limit), then sends what it can.
    fn write_plaintext(
        &self,
        cx: &Context<'_>,
        write: impl FnOnce(rustls::Writer<'_>) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let inner = &mut *self.inner.borrow_mut();
        match self.poll_send(inner, cx) {
            Poll::Ready(Ok(())) => {}
            other => return other.map(|r| r.map(|()| 0)),
        }
        let n = write(inner.tls.writer())?;
        if let Poll::Ready(Err(e)) = self.poll_send(inner, cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    /// Counts a handshake once it completes.
    fn count_handshake(&self, inner: &mut Inner) {
        if !inner.counted && !inner.tls.is_handshaking() {
            inner.counted = true;
            let resumed = inner.tls.handshake_kind() == Some(HandshakeKind::Resumed);
            self.socket.stats().tls_handshake(resumed);
        }
    }

    /// Counts why input ended or failed, once per connection.
    fn count_failure(&self, inner: &mut Inner, truncated: bool) {
        if inner.counted {
            // Only a truncation is worth counting after a completed handshake.
            if truncated {
                self.socket.stats().tls_truncated();
            }
            return;
        }
        inner.counted = true;
        let stats = self.socket.stats();
        if inner.track.plaintext() {
            stats.tls_plaintext();
        } else if truncated {
            stats.tls_truncated();
        } else {
            stats.tls_failed();
        }
    }
}

impl Transport for TlsStream {
    const BUFFERED: bool = true;

    /// Bytes must be encrypted: file bodies are copied through rustls.
    fn plain(&self) -> Option<&Socket> {
        None
    }

    fn poll_read(&self, cx: &Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.read_with(cx, buf, false)
    }

    fn poll_write(&self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.write_plaintext(cx, |mut writer| writer.write(buf))
    }

    fn poll_write_vectored(
        &self,
        cx: &Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // rustls frames the slices together: no small record for a chunk's size line.
        self.write_plaintext(cx, |mut writer| writer.write_vectored(bufs))
    }

    fn poll_flush(&self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send(&mut self.inner.borrow_mut(), cx)
    }

    fn read_now(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // `now`: the socket is read whatever readiness has been harvested, as
        // `Socket::read_now` does for the plain path.
        match self.read_with(&Context::from_waker(Waker::noop()), buf, true) {
            Poll::Ready(read) => read.map(Some),
            Poll::Pending => Ok(None),
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.close_notify();
        self.socket.shutdown_write()
    }

    fn close_notify(&self) {
        let inner = &mut *self.inner.borrow_mut();
        inner.tls.send_close_notify();
        // Best effort: a client that does not read loses the close_notify, not more.
        let _ = self.poll_send(inner, &Context::from_waker(Waker::noop()));
    }

    fn handshaking(&self) -> bool {
        self.inner.borrow().tls.is_handshaking()
    }

    fn tls_session(&self) -> Option<TlsSession> {
        let inner = self.inner.borrow();
        let tls = &inner.tls;
        let leaf = tls.peer_certificates().and_then(|chain| chain.first());
        Some(Rc::new(TlsInfo {
            version: tls.protocol_version()?.into(),
            cipher_suite: tls.negotiated_cipher_suite()?.suite().into(),
            client_cert: leaf.map(|leaf| leaf.as_ref().into()),
            client_subject: leaf.and_then(|leaf| subject(leaf)),
        }))
    }
}

impl TlsStream {
    /// Reads plaintext: what rustls holds, else records from the socket (`now`: with a
    /// `recv` even when no readiness was harvested).
    fn read_with(&self, cx: &Context<'_>, buf: &mut [u8], now: bool) -> Poll<io::Result<usize>> {
        let inner = &mut *self.inner.borrow_mut();
        loop {
            match inner.tls.reader().read(buf) {
                // Ok(0): the client sent close_notify, a clean end.
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    // The socket ended without close_notify: an end of input, and a
                    // truncation when it cut a record or the handshake short.
                    let cut = inner.track.mid_record()
                        || (inner.tls.is_handshaking() && inner.track.first.is_some());
                    if cut {
                        self.count_failure(inner, true);
                        // Counted once: a later read (a lingering close) finds no cut.
                        inner.track = Track {
                            first: inner.track.first,
                            ..Track::default()
                        };
                    }
                    inner.counted = true;
                    return Poll::Ready(Ok(0));
                }
            }
            // Handshake messages and alerts go out first: the client waits for them.
            match self.poll_send(inner, cx) {
                Poll::Ready(Ok(())) => {}
                other => return other.map(|r| r.map(|()| 0)),
            }
            let read = inner.tls.read_tls(&mut SocketReader {
                socket: &self.socket,
                cx,
                track: &mut inner.track,
                now,
            });
            match read {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
            if let Err(error) = inner.tls.process_new_packets() {
                self.count_failure(inner, false);
                // The alert rustls queued, if the socket takes it now.
                let _ = self.poll_send(inner, cx);
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, error)));
            }
            self.count_handshake(inner);
        }
    }
}

/// The socket as rustls's reader: `WouldBlock` when it has nothing (the task is then
/// woken by the socket's next event).
struct SocketReader<'a, 'b> {
    socket: &'a Socket,
    cx: &'a Context<'b>,
    track: &'a mut Track,
    /// Read with `Socket::read_now` (see `TlsStream::read_now`).
    now: bool,
}

impl Read for SocketReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.now {
            return match self.socket.read_now(buf)? {
                Some(n) => {
                    self.track.saw(&buf[..n]);
                    Ok(n)
                }
                None => Err(io::ErrorKind::WouldBlock.into()),
            };
        }
        match self.socket.poll_read(self.cx, buf) {
            Poll::Ready(Ok(n)) => {
                self.track.saw(&buf[..n]);
                Ok(n)
            }
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// The socket as rustls's writer.
struct SocketWriter<'a, 'b> {
    socket: &'a Socket,
    cx: &'a Context<'b>,
}

impl Write for SocketWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.socket.poll_write(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self.socket.poll_write_vectored(self.cx, bufs) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_follows_record_boundaries() {
        let mut track = Track::default();
        track.saw(&[0x16, 3, 1, 0, 4, 1, 2]);
        assert!(track.mid_record(), "two of four body bytes");
        track.saw(&[3, 4]);
        assert!(!track.mid_record());
        track.saw(&[0x17, 3]);
        assert!(track.mid_record(), "a partial header");
        assert!(!track.plaintext());
        let mut http = Track::default();
        http.saw(b"GET / HTTP/1.1\r\n");
        assert!(http.plaintext());
    }
}
