//! Rate limits for log lines that can repeat once per connection or per
//! command: in a bad hour (the backend down, the connection limit reached)
//! one line per event would bury everything else. Each kind of line gets a
//! [`LogThrottle`]; the first line let through after a quiet spell says how
//! many of its kind were left out.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Lines of one kind let through per window by [`warn_throttled!`].
pub const LOG_BURST: u32 = 5;
/// The window of [`warn_throttled!`].
pub const LOG_WINDOW: Duration = Duration::from_secs(10);

/// At most `burst` lines of one kind per `window`; the others are counted.
#[derive(Debug)]
pub struct LogThrottle {
    window: Duration,
    burst: u32,
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Option<Instant>,
    let_through: u32,
    left_out: u64,
}

impl LogThrottle {
    /// A throttle letting `burst` lines through per `window`.
    pub const fn new(window: Duration, burst: u32) -> LogThrottle {
        LogThrottle {
            window,
            burst,
            state: Mutex::new(Window {
                started: None,
                let_through: 0,
                left_out: 0,
            }),
        }
    }

    /// Whether to write a line now: `Some(n)` with the number of lines of
    /// this kind left out since the last one written, or `None` to leave
    /// this one out.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    /// [`Self::admit`] at a given time.
    pub fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut window = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let expired = window
            .started
            .is_none_or(|started| now.saturating_duration_since(started) >= self.window);
        if expired {
            window.started = Some(now);
            window.let_through = 0;
        }
        if window.let_through < self.burst {
            window.let_through += 1;
            Some(std::mem::take(&mut window.left_out))
        } else {
            window.left_out += 1;
            None
        }
    }
}

/// `tracing::warn!` through a `static` [`LogThrottle`] of the call site's
/// own: at most [`LOG_BURST`] lines per [`LOG_WINDOW`], each with a
/// `suppressed` field counting the lines of its kind left out before it.
///
/// ```
/// # let e = "connection refused";
/// sluice_metrics::warn_throttled!(error = %e, "login failed");
/// ```
#[macro_export]
macro_rules! warn_throttled {
    ($($field_or_message:tt)+) => {{
        static THROTTLE: $crate::LogThrottle =
            $crate::LogThrottle::new($crate::LOG_WINDOW, $crate::LOG_BURST);
        if let Some(suppressed) = THROTTLE.admit() {
            ::tracing::warn!(suppressed, $($field_or_message)+);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    #[test]
    fn lets_a_burst_through_then_counts_what_it_leaves_out() {
        let throttle = LogThrottle::new(WINDOW, 3);
        let t0 = Instant::now();
        let admitted: Vec<_> = (0..10)
            .map(|i| throttle.admit_at(t0 + Duration::from_millis(i)))
            .collect();
        assert_eq!(&admitted[..3], &[Some(0), Some(0), Some(0)]);
        assert!(admitted[3..].iter().all(Option::is_none));
        // The next window's first line carries the count.
        assert_eq!(throttle.admit_at(t0 + WINDOW), Some(7));
        assert_eq!(throttle.admit_at(t0 + WINDOW), Some(0));
    }

    #[test]
    fn a_quiet_spell_starts_a_new_window() {
        let throttle = LogThrottle::new(WINDOW, 1);
        let t0 = Instant::now();
        assert_eq!(throttle.admit_at(t0), Some(0));
        assert_eq!(throttle.admit_at(t0 + Duration::from_secs(9)), None);
        assert_eq!(throttle.admit_at(t0 + Duration::from_secs(60)), Some(1));
        assert_eq!(throttle.admit_at(t0 + Duration::from_secs(61)), None);
    }

    #[test]
    fn a_4600_line_outage_becomes_a_few_lines() {
        let throttle = LogThrottle::new(LOG_WINDOW, LOG_BURST);
        let t0 = Instant::now();
        // 4,600 events spread over 25 s.
        let written: Vec<u64> = (0..4600u64)
            .filter_map(|i| throttle.admit_at(t0 + Duration::from_micros(i * 25_000_000 / 4600)))
            .collect();
        assert_eq!(written.len(), 3 * LOG_BURST as usize);
        let counted: u64 = written.len() as u64 + written.iter().sum::<u64>();
        // Every event is written or counted, except those left out after
        // the last line written.
        assert!(counted <= 4600 && counted > 4600 - 2000, "{counted}");
    }
}
