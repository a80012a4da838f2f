//! The retry schedule: 250 ms before the first retry, doubling, capped at 4 s.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(250);
const CAP: Duration = Duration::from_secs(4);

/// How long to wait before retry number `retry` (0 for the first retry).
///
/// ```
/// use std::time::Duration;
/// use image::registry::backoff::delay;
///
/// assert_eq!(delay(0), Duration::from_millis(250));
/// assert_eq!(delay(10), Duration::from_secs(4));
/// ```
pub fn delay(retry: u32) -> Duration {
    FIRST
        .checked_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
        .map_or(CAP, |delay| delay.min(CAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_250ms_and_caps_at_4s() {
        let schedule: Vec<u128> = (0..8).map(|retry| delay(retry).as_millis()).collect();
        assert_eq!(schedule, [250, 500, 1000, 2000, 4000, 4000, 4000, 4000]);
        assert_eq!(delay(31), CAP);
        assert_eq!(delay(32), CAP);
        assert_eq!(delay(u32::MAX), CAP);
    }
}
