//! Repeated request headers joined into one value, as WSGI and the native API give
//! them.

use std::collections::HashMap;

use crate::latin1;

/// Every name that comes more than once in `headers` (compared without case), lower-cased,
/// with its values as Latin-1 text joined with `separator` in the order sent; in one
/// pass, so the work grows with the head, however many repeats it holds.
pub fn repeated<'h>(
    headers: impl Iterator<Item = (&'h str, &'h [u8])>,
    separator: &str,
) -> Vec<(String, String)> {
    let mut values: HashMap<String, (String, usize)> = HashMap::new();
    for (name, value) in headers {
        let (text, count) = values.entry(name.to_ascii_lowercase()).or_default();
        if *count > 0 {
            text.push_str(separator);
        }
        text.push_str(&latin1(value));
        *count += 1;
    }
    values
        .into_iter()
        .filter(|(_, (_, count))| *count > 1)
        .map(|(name, (text, _))| (name, text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_repeats_come_back_joined_in_order_whatever_their_case() {
        let headers: [(&str, &[u8]); 5] = [
            ("Accept", b"a"),
            ("Host", b"h"),
            ("ACCEPT", b"caf\xe9"),
            ("accept", b"c"),
            ("X-Once", b"1"),
        ];
        assert_eq!(
            repeated(headers.into_iter(), ", "),
            [("accept".to_owned(), "a, caf\u{e9}, c".to_owned())]
        );
        assert!(repeated(headers[1..2].iter().copied(), ",").is_empty());
    }
}
