//! Times as docker's logs write and read them: RFC 3339 with nanoseconds for the json-file
//! `time` field and the `--timestamps` prefix, and the `--since`/`--until` values `docker logs`
//! accepts (RFC 3339 with or without zone or parts of the time, Unix seconds with a fraction, or
//! a Go duration meaning "that long ago"). Pure: the caller passes the clock and the local zone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A time or duration that cannot be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimeError {
    #[error("cannot parse {value:?} as a time, unix timestamp or duration: {reason}")]
    Invalid { value: String, reason: String },
}

fn invalid(value: &str, reason: impl Into<String>) -> TimeError {
    TimeError::Invalid {
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Go's `time.RFC3339Nano` in UTC, trailing zeros of the fraction dropped (json-file's `time`):
/// docker's one format for times in JSON, [`crate::engine::present::rfc3339_nano`].
pub use crate::engine::present::rfc3339_nano as format_rfc3339_nano;

/// docker's `RFC3339NanoFixed` in UTC, always nine digits (the `--timestamps` prefix).
pub fn format_rfc3339_nano_fixed(time: SystemTime) -> String {
    humantime::format_rfc3339_nanos(time).to_string()
}

/// Parses an RFC 3339 time with a zone, as written in json-file logs and `SYSLOG_TIMESTAMP`.
pub fn parse_rfc3339(value: &str) -> Result<SystemTime, TimeError> {
    let parsed = parse_date_time(value)?;
    let offset = parsed
        .offset
        .ok_or_else(|| invalid(value, "no time zone"))?;
    if parsed.hour.is_none() || parsed.second.is_none() {
        return Err(invalid(value, "no seconds"));
    }
    Ok(parsed.at(offset))
}

/// Parses a `--since`/`--until` value with docker's rules; `now` anchors durations and
/// `local_offset_seconds` (east of UTC) is the zone of times written without one.
pub fn parse_since(
    value: &str,
    now: SystemTime,
    local_offset_seconds: i32,
) -> Result<SystemTime, TimeError> {
    if value != "0" {
        if let Some(ago) = parse_go_duration(value) {
            let by = Duration::from_nanos(ago.unsigned_abs());
            let time = if ago >= 0 {
                now.checked_sub(by)
            } else {
                now.checked_add(by)
            };
            return time.ok_or_else(|| invalid(value, "duration out of range"));
        }
    }
    if value.contains('-') {
        let parsed = parse_date_time(value)?;
        return Ok(parsed.at(parsed.offset.unwrap_or(local_offset_seconds)));
    }
    parse_unix(value)
}

fn parse_unix(value: &str) -> Result<SystemTime, TimeError> {
    let (seconds, fraction) = value.split_once('.').unwrap_or((value, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if seconds.is_empty() || !all_digits(seconds) || !all_digits(fraction) || fraction.len() > 9 {
        return Err(invalid(
            value,
            "not a time (no '-'), a duration (no unit) or unix seconds[.nanoseconds]",
        ));
    }
    let seconds: u64 = seconds
        .parse()
        .map_err(|_| invalid(value, "unix seconds out of range"))?;
    let nanos = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().unwrap_or(0)
    };
    UNIX_EPOCH
        .checked_add(Duration::new(seconds, nanos))
        .ok_or_else(|| invalid(value, "unix seconds out of range"))
}

/// Go's `time.ParseDuration` in nanoseconds, or `None` when `value` is not a duration.
fn parse_go_duration(value: &str) -> Option<i64> {
    let (negative, mut rest) = match value.as_bytes().first()? {
        b'-' => (true, &value[1..]),
        b'+' => (false, &value[1..]),
        _ => (false, value),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number.parse::<f64>().ok()? * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    Some(if negative {
        -(total as i64)
    } else {
        total as i64
    })
}

/// `YYYY-MM-DD[Thh[:mm[:ss[.fraction]]]][Z|±hh:mm]`, the forms docker's `GetTimestamp` accepts.
#[derive(Debug)]
struct DateTime {
    days: i64,
    hour: Option<u32>,
    minute: u32,
    second: Option<u32>,
    nanos: u32,
    offset: Option<i32>,
}

impl DateTime {
    fn at(&self, offset: i32) -> SystemTime {
        let local = self.days * 86_400
            + i64::from(self.hour.unwrap_or(0)) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second.unwrap_or(0));
        let utc = local - i64::from(offset);
        if utc >= 0 {
            UNIX_EPOCH + Duration::new(utc as u64, self.nanos)
        } else {
            UNIX_EPOCH - Duration::new(utc.unsigned_abs(), 0)
                + Duration::from_nanos(self.nanos.into())
        }
    }
}

fn parse_date_time(value: &str) -> Result<DateTime, TimeError> {
    let mut cursor = Cursor { value, at: 0 };
    let year = cursor.number(4, "year")?;
    cursor.expect('-', "'-' after the year")?;
    let month = cursor.number(2, "month")?;
    cursor.expect('-', "'-' after the month")?;
    let day = cursor.number(2, "day")?;
    if !(1..=12).contains(&month) {
        return Err(invalid(value, format!("month {month} out of range")));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(invalid(value, format!("day {day} out of range")));
    }
    let mut parsed = DateTime {
        days: days_from_civil(year.into(), month, day),
        hour: None,
        minute: 0,
        second: None,
        nanos: 0,
        offset: None,
    };
    if cursor.eat('T') {
        let hour = cursor.number(2, "hour")?;
        if hour > 23 {
            return Err(invalid(value, "hour out of range"));
        }
        parsed.hour = Some(hour);
        if cursor.eat(':') {
            parsed.minute = cursor.number(2, "minute")?;
            if cursor.eat(':') {
                parsed.second = Some(cursor.number(2, "second")?);
                if cursor.eat('.') {
                    let digits = cursor.digits();
                    if digits.is_empty() || digits.len() > 9 {
                        return Err(invalid(
                            value,
                            "fraction of a second must have 1 to 9 digits",
                        ));
                    }
                    parsed.nanos = format!("{digits:0<9}").parse().unwrap_or(0);
                }
            }
        }
        if parsed.minute > 59 || parsed.second.is_some_and(|s| s > 59) {
            return Err(invalid(value, "minute or second out of range"));
        }
    }
    parsed.offset = cursor.zone()?;
    if cursor.at != value.len() {
        return Err(invalid(
            value,
            format!("unexpected {:?}", &value[cursor.at..]),
        ));
    }
    Ok(parsed)
}

struct Cursor<'a> {
    value: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.value[self.at..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.at += c.len_utf8();
        }
        found
    }

    fn expect(&mut self, c: char, what: &str) -> Result<(), TimeError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(invalid(self.value, format!("expected {what}")))
        }
    }

    fn digits(&mut self) -> &str {
        let rest = &self.value[self.at..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        self.at += end;
        &rest[..end]
    }

    fn number(&mut self, width: usize, what: &str) -> Result<u32, TimeError> {
        let rest = &self.value[self.at..];
        let digits = rest
            .get(..width)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
        let digits = digits
            .ok_or_else(|| invalid(self.value, format!("expected a {width}-digit {what}")))?;
        self.at += width;
        Ok(digits.parse().unwrap_or(0))
    }

    fn zone(&mut self) -> Result<Option<i32>, TimeError> {
        if self.eat('Z') || self.eat('z') {
            return Ok(Some(0));
        }
        let sign = match self.peek() {
            Some('+') => 1,
            Some('-') => -1,
            _ => return Ok(None),
        };
        self.at += 1;
        let hours = self.number(2, "zone hour")?;
        self.expect(':', "':' in the zone offset")?;
        let minutes = self.number(2, "zone minute")?;
        if hours > 23 || minutes > 59 {
            return Err(invalid(self.value, "zone offset out of range"));
        }
        Ok(Some(sign * (hours * 3600 + minutes * 60) as i32))
    }
}

fn is_leap(year: u32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_564_800; // 2026-11-25T00:00:00Z

    fn at(seconds: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(seconds, nanos)
    }

    #[test]
    fn formats_like_go_and_docker() {
        let t = at(NOW + 36_000, 123_450_000);
        assert_eq!(format_rfc3339_nano(t), "2026-11-25T10:00:00.12345Z");
        assert_eq!(
            format_rfc3339_nano_fixed(t),
            "2026-11-25T10:00:00.123450000Z"
        );
        assert_eq!(format_rfc3339_nano(at(NOW, 0)), "2026-11-25T00:00:00Z");
        assert_eq!(
            format_rfc3339_nano(at(951_782_400, 0)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn rfc3339_round_trips() {
        for t in [at(NOW, 0), at(NOW + 1, 1), at(951_782_400, 999_999_999)] {
            assert_eq!(parse_rfc3339(&format_rfc3339_nano(t)), Ok(t));
            assert_eq!(parse_rfc3339(&format_rfc3339_nano_fixed(t)), Ok(t));
        }
    }

    #[test]
    fn since_values_follow_dockers_rules() {
        let now = at(NOW, 0);
        let cases: &[(&str, i32, SystemTime)] = &[
            ("10m", 0, at(NOW - 600, 0)),
            ("1h30m", 0, at(NOW - 5400, 0)),
            ("1.5h", 0, at(NOW - 5400, 0)),
            ("-10s", 0, at(NOW + 10, 0)),
            ("300ms", 0, at(NOW - 1, 700_000_000)),
            ("0", 0, at(0, 0)),
            ("1795564800", 0, at(NOW, 0)),
            ("1795564800.5", 0, at(NOW, 500_000_000)),
            ("1795564800.000000001", 0, at(NOW, 1)),
            ("2026-11-25", 0, at(NOW, 0)),
            ("2026-11-25", 3600, at(NOW - 3600, 0)),
            ("2026-11-25Z", 3600, at(NOW, 0)),
            ("2026-11-25T01", 0, at(NOW + 3600, 0)),
            ("2026-11-25T01:02", 0, at(NOW + 3720, 0)),
            ("2026-11-25T01:02:03", 0, at(NOW + 3723, 0)),
            ("2026-11-25T01:02:03", -7200, at(NOW + 3723 + 7200, 0)),
            ("2026-11-25T01:02:03.25", 0, at(NOW + 3723, 250_000_000)),
            ("2026-11-25T01:02:03Z", 3600, at(NOW + 3723, 0)),
            ("2026-11-25T01:02:03+01:00", 0, at(NOW + 123, 0)),
            ("2026-11-25T01+01:00", 0, at(NOW, 0)),
            (
                "2026-11-25T01:02:03.5-00:30",
                0,
                at(NOW + 3723 + 1800, 500_000_000),
            ),
        ];
        for (value, offset, expected) in cases {
            assert_eq!(
                parse_since(value, now, *offset).as_ref(),
                Ok(expected),
                "{value}"
            );
        }
    }

    #[test]
    fn bad_since_values_say_what_is_wrong() {
        let now = at(NOW, 0);
        let cases = [
            (
                "",
                "not a time (no '-'), a duration (no unit) or unix seconds[.nanoseconds]",
            ),
            (
                "10x",
                "not a time (no '-'), a duration (no unit) or unix seconds[.nanoseconds]",
            ),
            (
                "12.3.4",
                "not a time (no '-'), a duration (no unit) or unix seconds[.nanoseconds]",
            ),
            ("2026-13-01", "month 13 out of range"),
            ("2026-02-29", "day 29 out of range"),
            ("2026-11-25T25", "hour out of range"),
            ("2026-11-25T10:61", "minute or second out of range"),
            (
                "2026-11-25T10:00:00.",
                "fraction of a second must have 1 to 9 digits",
            ),
            (
                "2026-11-25T10:00:00+0100",
                "expected ':' in the zone offset",
            ),
            ("2026-11-25 10:00", "unexpected \" 10:00\""),
            ("26-11-25", "expected a 4-digit year"),
            ("18446744073709551615", "unix seconds out of range"),
        ];
        for (value, reason) in cases {
            let expected = TimeError::Invalid {
                value: value.to_owned(),
                reason: reason.to_owned(),
            };
            assert_eq!(parse_since(value, now, 0), Err(expected), "{value}");
        }
        assert_eq!(
            parse_since("2026-13-01", now, 0).unwrap_err().to_string(),
            "cannot parse \"2026-13-01\" as a time, unix timestamp or duration: month 13 out of range"
        );
    }

    proptest::proptest! {
        #[test]
        fn no_value_makes_the_parser_panic(value in "\\PC{0,30}|[0-9TZ:.+-]{0,30}") {
            let _ = parse_since(&value, at(NOW, 0), 3600);
        }
    }

    #[test]
    fn json_times_need_a_zone_and_seconds() {
        assert!(parse_rfc3339("2026-11-25T10:00:00").is_err());
        assert!(parse_rfc3339("2026-11-25T10Z").is_err());
    }
}
