//! The wall clock in Unix seconds, as every record, event and census of this crate stamps
//! it. A leaf: it imports nothing from the crate.

/// Now, in whole Unix seconds (0 before 1970, `i64::MAX` past its range).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
