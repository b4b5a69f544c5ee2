//! `tls.ciphers`: the cipher suites a server offers, by the names operators know them
//! by: IANA's (`TLS_AES_128_GCM_SHA256`, `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`),
//! OpenSSL's (`ECDHE-RSA-AES128-GCM-SHA256`) or rustls's (`TLS13_AES_128_GCM_SHA256`).
//!
//! Each TLS version is chosen for apart, as OpenSSL (and so nginx's `ssl_ciphers` and
//! Python's `set_ciphers`) does: a list that names no TLS 1.3 suite leaves TLS 1.3 all
//! of its suites, and one that names no TLS 1.2 suite leaves TLS 1.2 all of its.

use rustls::crypto::ring::cipher_suite as ring;
use rustls::SupportedCipherSuite;

/// Every suite Haywire's TLS has, strongest first within each version: its IANA name,
/// OpenSSL's (the same for TLS 1.3), and the suite.
fn all() -> [(&'static str, &'static str, SupportedCipherSuite); 9] {
    [
        (
            "TLS_AES_256_GCM_SHA384",
            "TLS_AES_256_GCM_SHA384",
            ring::TLS13_AES_256_GCM_SHA384,
        ),
        (
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_128_GCM_SHA256",
            ring::TLS13_AES_128_GCM_SHA256,
        ),
        (
            "TLS_CHACHA20_POLY1305_SHA256",
            "TLS_CHACHA20_POLY1305_SHA256",
            ring::TLS13_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            ring::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            ring::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            ring::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            ring::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            ring::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "ECDHE-RSA-CHACHA20-POLY1305",
            ring::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    ]
}

/// A cipher suite `tls.ciphers` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipherSuite {
    /// IANA's name, e.g. `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`.
    pub iana: &'static str,
    /// OpenSSL's name, e.g. `ECDHE-RSA-AES128-GCM-SHA256` (IANA's for TLS 1.3).
    pub openssl: &'static str,
    /// A TLS 1.3 suite (else TLS 1.2).
    pub tls13: bool,
}

/// Every suite Haywire's TLS has, strongest first within each version, TLS 1.3's first:
/// what `tls.ciphers` may name (a front end that reads another syntax, OpenSSL's cipher
/// strings say, maps onto these).
pub fn cipher_suites() -> Vec<CipherSuite> {
    all()
        .iter()
        .map(|&(iana, openssl, suite)| CipherSuite {
            iana,
            openssl,
            tls13: matches!(suite, SupportedCipherSuite::Tls13(_)),
        })
        .collect()
}

/// The suites `names` name, in their order (duplicates once), and every suite of a
/// version they name none of; `None` (the provider's own list) when `names` is empty.
/// The error names the first unknown name and lists the names known.
pub(crate) fn select(names: &[String]) -> Result<Option<Vec<SupportedCipherSuite>>, String> {
    if names.is_empty() {
        return Ok(None);
    }
    let table = all();
    let mut chosen: Vec<SupportedCipherSuite> = Vec::with_capacity(table.len());
    for name in names {
        let found = table.iter().find(|(iana, openssl, suite)| {
            [*iana, *openssl, suite.suite().as_str().unwrap_or_default()]
                .iter()
                .any(|known| known.eq_ignore_ascii_case(name.trim()))
        });
        let Some(&(_, _, suite)) = found else {
            let iana: Vec<&str> = table.iter().map(|(iana, ..)| *iana).collect();
            let openssl: Vec<&str> = table[3..].iter().map(|(_, openssl, _)| *openssl).collect();
            return Err(format!(
                "{name:?} is not a cipher suite Haywire offers; the suites: {} (OpenSSL's \
                 names for the TLS 1.2 ones: {})",
                iana.join(", "),
                openssl.join(", ")
            ));
        };
        if !chosen.iter().any(|c| c.suite() == suite.suite()) {
            chosen.push(suite);
        }
    }
    for tls13 in [true, false] {
        let is = |s: &SupportedCipherSuite| matches!(s, SupportedCipherSuite::Tls13(_)) == tls13;
        if !chosen.iter().any(is) {
            chosen.extend(table.iter().map(|(.., suite)| *suite).filter(is));
        }
    }
    Ok(Some(chosen))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_spelling_names_its_suite_in_the_order_given() {
        let chosen = select(&names(&[
            "ECDHE-RSA-AES128-GCM-SHA256",
            "tls_aes_256_gcm_sha384",
            "TLS13_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ]))
        .unwrap()
        .unwrap();
        let got: Vec<_> = chosen.iter().map(|s| s.suite()).collect();
        assert_eq!(
            got,
            [
                ring::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.suite(),
                ring::TLS13_AES_256_GCM_SHA384.suite(),
                ring::TLS13_CHACHA20_POLY1305_SHA256.suite(),
            ]
        );
        assert!(select(&[]).unwrap().is_none());
    }

    #[test]
    fn the_listed_suites_are_the_ones_select_knows_tls_1_3_first() {
        let listed = cipher_suites();
        assert_eq!(listed.len(), all().len());
        assert!(listed[..3].iter().all(|s| s.tls13) && !listed[3..].iter().any(|s| s.tls13));
        for (suite, (.., known)) in listed.iter().zip(all()) {
            for name in [suite.iana, suite.openssl] {
                // Named alone, a suite comes first, the other version's suites after it.
                let chosen = select(&names(&[name])).unwrap().unwrap();
                assert_eq!(chosen[0].suite(), known.suite(), "{name}");
            }
        }
    }

    #[test]
    fn a_version_named_in_no_name_keeps_all_its_suites() {
        let chosen = select(&names(&["ECDHE-ECDSA-AES256-GCM-SHA384"]))
            .unwrap()
            .unwrap();
        let tls13: Vec<_> = all()[..3].iter().map(|(.., s)| s.suite()).collect();
        let got: Vec<_> = chosen.iter().map(|s| s.suite()).collect();
        assert_eq!(
            got[0],
            ring::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384.suite()
        );
        assert_eq!(got[1..], tls13[..]);
        let chosen = select(&names(&["TLS_AES_128_GCM_SHA256"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            chosen.len(),
            1 + 6,
            "the one TLS 1.3 suite and every TLS 1.2 one"
        );
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_names_known() {
        let err = select(&names(&["DHE-RSA-AES128-GCM-SHA256"])).unwrap_err();
        assert!(
            err.starts_with("\"DHE-RSA-AES128-GCM-SHA256\" is not a cipher suite"),
            "{err}"
        );
        assert!(
            err.contains("TLS_AES_128_GCM_SHA256") && err.contains("ECDHE-RSA-AES128-GCM-SHA256")
        );
    }
}
