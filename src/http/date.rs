//! The `Date` header value, formatted once a second per shard instead of per response.

use std::cell::Cell;
use std::io::Write;
use std::time::{Duration, SystemTime};

/// Length of an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// One shard's cached `Date` value. Refresh it once a second ([`DateCache::refresh`]).
pub struct DateCache {
    value: Cell<[u8; DATE_LEN]>,
}

impl Default for DateCache {
    fn default() -> Self {
        let cache = DateCache {
            value: Cell::new([b' '; DATE_LEN]),
        };
        cache.refresh(SystemTime::now());
        cache
    }
}

impl DateCache {
    /// Reformats the cached value for `now`.
    /// Formats into a stack buffer: no allocation, so a shard at rest allocates nothing.
    pub fn refresh(&self, now: SystemTime) {
        let mut value = [b' '; DATE_LEN];
        // An IMF-fixdate is always exactly DATE_LEN bytes, so the write cannot fall short.
        let _ = write!(&mut value[..], "{}", httpdate::HttpDate::from(now));
        self.value.set(value);
    }

    /// The current value.
    pub fn get(&self) -> [u8; DATE_LEN] {
        self.value.get()
    }

    /// How long until the next second starts, so refreshes land on the tick.
    pub fn until_next_second(now: SystemTime) -> Duration {
        let into = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Duration::from_nanos(1_000_000_000 - u64::from(into))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_an_imf_fixdate() {
        let cache = DateCache::default();
        cache.refresh(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777));
        assert_eq!(&cache.get(), b"Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
