//! What an app learns of a TLS connection: its version and cipher suite, and the client
//! certificate verified against `tls.client_ca` (mutual TLS) with its subject, as
//! WSGI's `SSL_PROTOCOL`, `SSL_CLIENT_CERT` and `SSL_CLIENT_S_DN` (mod_ssl's names) and
//! ASGI's TLS extension (`scope["extensions"]["tls"]`).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use haywire::config::TlsConfig;

use crate::bridge::JobTls;

/// `der` as a PEM `CERTIFICATE` block (64 columns, as OpenSSL writes it).
pub fn pem(der: &[u8]) -> String {
    let text = BASE64.encode(der);
    let mut out = String::with_capacity(text.len() + text.len() / 64 + 60);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        // Base64 is ASCII: every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Adds `SSL_PROTOCOL` and, with a client certificate, `SSL_CLIENT_CERT` (PEM) and
/// `SSL_CLIENT_S_DN` (its subject, RFC 4514) to a WSGI environ.
pub fn add_wsgi_variables(py: Python<'_>, env: &Bound<'_, PyDict>, tls: &JobTls) -> PyResult<()> {
    env.set_item(intern!(py, "SSL_PROTOCOL"), tls.version_name)?;
    if let Some(der) = &tls.client_cert {
        env.set_item(intern!(py, "SSL_CLIENT_CERT"), pem(der))?;
    }
    if let Some(subject) = &tls.client_subject {
        env.set_item(intern!(py, "SSL_CLIENT_S_DN"), subject)?;
    }
    Ok(())
}

/// The leaf certificate of `tls.cert` as the file holds it (PEM), read once per
/// worker (a SIGHUP restarts workers, so a renewed certificate is read again); `None`
/// without TLS.
pub fn server_certificate(tls: &TlsConfig) -> Option<String> {
    const END: &str = "-----END CERTIFICATE-----";
    if tls.cert.is_empty() {
        return None;
    }
    let text = std::fs::read_to_string(&tls.cert).ok()?;
    let start = text.find("-----BEGIN CERTIFICATE-----")?;
    let end = start + text[start..].find(END)? + END.len();
    Some(format!("{}\n", &text[start..end]))
}

/// Adds the ASGI TLS extension to `scope` (a copy of the base scope, whose
/// `extensions` dict is shared, so it gets its own). The client's chain is its
/// verified leaf, or empty, and `client_cert_name` its subject; `client_cert_error` is
/// `None` (a certificate that does not verify is refused in the handshake).
pub fn add_tls_extension(
    py: Python<'_>,
    scope: &Bound<'_, PyDict>,
    tls: &JobTls,
    server_cert: Option<&str>,
) -> PyResult<()> {
    let extensions = match scope.get_item(intern!(py, "extensions"))? {
        Some(shared) => shared.cast::<PyDict>()?.copy()?,
        None => PyDict::new(py),
    };
    let extension = PyDict::new(py);
    extension.set_item("server_cert", server_cert)?;
    let chain = PyList::empty(py);
    if let Some(der) = &tls.client_cert {
        chain.append(pem(der))?;
    }
    extension.set_item("client_cert_chain", chain)?;
    extension.set_item("client_cert_name", tls.client_subject.as_deref())?;
    extension.set_item("client_cert_error", py.None())?;
    extension.set_item("tls_version", tls.version)?;
    extension.set_item("cipher_suite", tls.cipher_suite)?;
    extensions.set_item("tls", extension)?;
    scope.set_item(intern!(py, "extensions"), extensions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_wraps_base64_at_64_columns() {
        let text = pem(&[0u8; 100]);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(
            lines[1..lines.len() - 1].concat(),
            BASE64.encode([0u8; 100])
        );
        assert_eq!(lines[lines.len() - 1], "-----END CERTIFICATE-----");
    }
}
