//! Which CPUs this process may run on, read from the kernel without `unsafe`.

use std::io;

/// The CPUs in this process's affinity mask, ascending, so that
/// `taskset -c 1 haywire --shards 1` places its shard on CPU 1.
pub fn allowed() -> io::Result<Vec<usize>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .ok_or_else(|| io::Error::other("no Cpus_allowed_list in /proc/self/status"))?;
    parse_list(list.trim())
}

/// Parses a kernel CPU list such as `0-3,8,10-11`.
///
/// ```
/// let cpus = haywire_shards::cpus::parse_list("0-3,8,10-11").unwrap();
/// assert_eq!(cpus, vec![0, 1, 2, 3, 8, 10, 11]);
/// ```
pub fn parse_list(list: &str) -> io::Result<Vec<usize>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad CPU list {list:?}"));
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (part, part),
        };
        let lo: usize = lo.trim().parse().map_err(|_| bad())?;
        let hi: usize = hi.trim().parse().map_err(|_| bad())?;
        if lo > hi {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_singles() {
        assert_eq!(
            parse_list("0-3,8,10-11").unwrap(),
            vec![0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(parse_list("1").unwrap(), vec![1]);
        assert!(parse_list("3-1").is_err());
        assert!(parse_list("x").is_err());
    }

    #[test]
    fn this_process_may_run_somewhere() {
        assert!(!allowed().unwrap().is_empty());
    }
}
