//! The ranges numeric settings must fall in, in one place for command-line
//! flags, regress suites and the proxy's configuration, so the same value is
//! refused everywhere with the same words (a NaN, an infinity, a zero that
//! would busy-loop, a timeout that would wait forever).

/// A closed range of a setting and its unit, for messages.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    /// The smallest value allowed.
    pub min: f64,
    /// The largest value allowed.
    pub max: f64,
    /// What the number counts ("seconds", "connections").
    pub unit: &'static str,
}

/// A step's timeout: connect, STARTTLS, a TLS handshake (`--timeout`,
/// `timeout_secs` in suites, `connect_timeout_secs`).
pub const TIMEOUT_SECS: Range = Range::new(0.1, 600.0, "seconds");
/// One DNS answer's wait (`--dns-timeout`).
pub const DNS_TIMEOUT_SECS: Range = Range::new(0.1, 60.0, "seconds");
/// An online fetch's wait (`--online-timeout`).
pub const ONLINE_TIMEOUT_SECS: Range = Range::new(1.0, 600.0, "seconds");
/// The proxy's long periods: idle timeout, SRV refresh, grace at shutdown.
pub const PERIOD_SECS: Range = Range::new(0.1, 86_400.0, "seconds");
/// Work done at once (`--concurrency`).
pub const CONCURRENCY: Range = Range::new(1.0, 1024.0, "at once");
/// How close an expiry warns (`--expiry-warn-days`).
pub const EXPIRY_WARN_DAYS: Range = Range::new(0.0, 3650.0, "days");
/// Megabytes per capture file before a new one starts (`--pcap-max-mb`).
pub const PCAP_MAX_MB: Range = Range::new(1.0, 1_048_576.0, "MB");

impl Range {
    /// The range `min..=max` of `unit`.
    pub const fn new(min: f64, max: f64, unit: &'static str) -> Range {
        Range { min, max, unit }
    }

    /// What is allowed, in words.
    fn allowed(&self) -> String {
        format!("give {} between {} and {}", self.unit, self.min, self.max)
    }

    /// `v` when it lies in the range; otherwise what is allowed.
    pub fn check(&self, v: f64) -> Result<f64, String> {
        if v.is_finite() && (self.min..=self.max).contains(&v) {
            Ok(v)
        } else {
            Err(format!("{v} is out of range: {}", self.allowed()))
        }
    }

    /// `s` read as a number in the range.
    pub fn parse(&self, s: &str) -> Result<f64, String> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a number: {}", self.allowed()))?;
        self.check(v)
    }

    /// `s` read as a whole number in the range.
    pub fn parse_whole(&self, s: &str) -> Result<u64, String> {
        let v: u64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a whole number: {}", self.allowed()))?;
        self.check(v as f64).map(|_| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_outside_or_not_numbers_are_refused_with_the_range() {
        assert_eq!(TIMEOUT_SECS.parse("5").unwrap(), 5.0);
        assert_eq!(TIMEOUT_SECS.parse("0.1").unwrap(), 0.1);
        for bad in ["NaN", "inf", "-inf", "1e30", "0", "-1", "600.5"] {
            let e = TIMEOUT_SECS.parse(bad).unwrap_err();
            assert!(e.contains("between 0.1 and 600"), "{bad}: {e}");
        }
        assert!(
            TIMEOUT_SECS
                .parse("five")
                .unwrap_err()
                .contains("not a number")
        );
        assert_eq!(CONCURRENCY.parse_whole("8").unwrap(), 8);
        assert!(
            CONCURRENCY
                .parse_whole("0")
                .unwrap_err()
                .contains("between 1 and 1024")
        );
        assert!(
            CONCURRENCY
                .parse_whole("1.5")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(TIMEOUT_SECS.check(f64::NAN).is_err());
    }
}
