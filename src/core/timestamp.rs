//! Times as users and reports write them, in one place: `--at` and a suite's
//! `at` parsed (RFC 3339, or a bare date read as 00:00 UTC), and every time a
//! report prints written as RFC 3339 in UTC.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// RFC 3339 (`2026-01-31T12:00:00Z`), or a bare date (`2026-01-31`) taken as
/// 00:00 UTC that day; otherwise what to write instead.
pub fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let date_only = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &date_only)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| {
            format!(
                "{s:?} is not a time: use RFC 3339 (2026-01-31T12:00:00Z) or a date (2026-01-31, read as 00:00 UTC)"
            )
        })
}

/// `t` as RFC 3339 in UTC (`2027-01-01T00:00:00Z`): the one way reports,
/// evidence and messages write a time.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_parse_as_rfc3339_or_a_bare_date() {
        let midnight = datetime!(2026-01-31 00:00 UTC);
        assert_eq!(parse_time("2026-01-31").unwrap(), midnight);
        assert_eq!(parse_time("2026-01-31T00:00:00Z").unwrap(), midnight);
        assert_eq!(parse_time("2026-01-31T01:00:00+01:00").unwrap(), midnight);
        for bad in ["yesterday", "", "2026-13-01", "31/01/2026"] {
            assert!(parse_time(bad).unwrap_err().contains("RFC 3339"), "{bad}");
        }
    }

    #[test]
    fn times_are_written_in_utc() {
        assert_eq!(
            rfc3339(datetime!(2027-01-01 00:00 UTC)),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(datetime!(2027-01-01 01:00 +01:00)),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(datetime!(2026-12-31 20:30 -03:30)),
            "2027-01-01T00:00:00Z"
        );
    }
}
