//! A site's maintenance window, and the pure questions asked of it: is it open now, and when does it open
//! next.
//!
//! Times are wall-clock times in the site's timezone. "Open" means that the local time is inside
//! `[start, end)` on a day the window may start; a window whose end is not after its start wraps past
//! midnight into the next day. This reads the way a practice manager means it across daylight-saving
//! changes: a 02:00–05:00 window in New York is open 03:00–05:00 EDT on the spring-forward day (02:00–03:00
//! does not exist) and 02:00–05:00 EST on the fall-back day; a window inside the skipped hour does not
//! open that day.

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::defaults;

/// When disruptive work (disruptive runbooks, appliance reboots) may happen at a site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// Local time the window opens, `HH:MM` in 24-hour time (e.g. `02:00`).
    pub start: String,
    /// Local time the window closes, `HH:MM`; at or before `start` means it closes the next day.
    pub end: String,
    /// IANA timezone of `start` and `end` (e.g. `America/New_York`); UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::maintenance_timezone")]
    pub timezone: Option<String>,
    /// Days on which the window may start; a window that wraps past midnight belongs to the day it
    /// starts. Every day when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<Weekday>,
}

/// A day of the week, as a maintenance window names it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl MaintenanceWindow {
    /// Whether the window is open at `now`.
    ///
    /// A window with an invalid time or timezone (which validation reports) is never open: disruptive
    /// work waits rather than guessing.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let Some(window) = self.parse() else {
            return false;
        };
        let local = now.with_timezone(&window.tz);
        let (date, time) = (local.date_naive(), local.time());
        if window.start < window.end {
            window.starts_on(date) && window.start <= time && time < window.end
        } else {
            (window.starts_on(date) && time >= window.start)
                || (time < window.end && date.pred_opt().is_some_and(|d| window.starts_on(d)))
        }
    }

    /// The first instant strictly after `now` at which the window opens, or `None` when the window is
    /// invalid.
    ///
    /// When the start time falls in a daylight-saving gap, the window opens at the end of the gap; when it
    /// falls in a repeated hour, it opens at the first occurrence, and again at the second one if it had
    /// closed in between.
    pub fn next_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let window = self.parse()?;
        let today = now.with_timezone(&window.tz).date_naive();
        // A week and a day covers any day filter, plus one day on each side for offsets and gaps.
        (-1..=8)
            .filter_map(|offset| today.checked_add_signed(TimeDelta::days(offset)))
            .filter(|date| window.starts_on(*date))
            .flat_map(|date| window.start_instants(date))
            .find(|&instant| {
                instant > now
                    && self.contains(instant)
                    && !self.contains(instant - TimeDelta::seconds(1))
            })
    }

    /// The timezone name in force: the one given, or the default.
    pub fn timezone_name(&self) -> &str {
        self.timezone
            .as_deref()
            .unwrap_or(defaults::MAINTENANCE_TIMEZONE)
    }

    fn parse(&self) -> Option<ParsedWindow> {
        Some(ParsedWindow {
            start: parse_time_of_day(&self.start)?,
            end: parse_time_of_day(&self.end)?,
            tz: self.timezone_name().parse().ok()?,
            days: self.days.iter().map(|d| d.to_chrono()).collect(),
        })
    }
}

impl Weekday {
    fn to_chrono(self) -> chrono::Weekday {
        match self {
            Weekday::Mon => chrono::Weekday::Mon,
            Weekday::Tue => chrono::Weekday::Tue,
            Weekday::Wed => chrono::Weekday::Wed,
            Weekday::Thu => chrono::Weekday::Thu,
            Weekday::Fri => chrono::Weekday::Fri,
            Weekday::Sat => chrono::Weekday::Sat,
            Weekday::Sun => chrono::Weekday::Sun,
        }
    }
}

/// Parses `HH:MM` in 24-hour time with exactly two digits each (`02:00`, `23:59`).
pub(crate) fn parse_time_of_day(s: &str) -> Option<NaiveTime> {
    let (hours, minutes) = s.split_once(':')?;
    let two_digits = |part: &str| {
        (part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    NaiveTime::from_hms_opt(two_digits(hours)?, two_digits(minutes)?, 0)
}

/// A window whose fields have been checked.
struct ParsedWindow {
    start: NaiveTime,
    end: NaiveTime,
    tz: Tz,
    days: Vec<chrono::Weekday>,
}

impl ParsedWindow {
    fn starts_on(&self, date: NaiveDate) -> bool {
        self.days.is_empty() || self.days.contains(&date.weekday())
    }

    /// The instants at which the local clock reads `start` on `date`: one normally, two in a repeated
    /// hour, and the end of the gap when `start` is skipped.
    fn start_instants(&self, date: NaiveDate) -> Vec<DateTime<Utc>> {
        let local = date.and_time(self.start);
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => vec![t.to_utc()],
            LocalResult::Ambiguous(first, second) => vec![first.to_utc(), second.to_utc()],
            // Transitions happen on whole minutes, so the first minute that exists ends the gap; tzdb gaps
            // are at most a day long (Samoa skipped 2011-12-30).
            LocalResult::None => (1..=24 * 60)
                .find_map(|minutes| {
                    self.tz
                        .from_local_datetime(&(local + TimeDelta::minutes(minutes)))
                        .earliest()
                })
                .map(|t| t.to_utc())
                .into_iter()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: &str, end: &str, tz: Option<&str>, days: &[Weekday]) -> MaintenanceWindow {
        MaintenanceWindow {
            start: start.into(),
            end: end.into(),
            timezone: tz.map(Into::into),
            days: days.to_vec(),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn parse_time_of_day_table() {
        let cases = [
            ("02:00", Some((2, 0))),
            ("23:59", Some((23, 59))),
            ("00:00", Some((0, 0))),
            ("24:00", None),
            ("2:00", None),
            ("02:60", None),
            ("0200", None),
            ("02:00:00", None),
            ("+2:00", None),
            ("", None),
        ];
        for (text, expected) in cases {
            let expected = expected.map(|(h, m)| NaiveTime::from_hms_opt(h, m, 0).unwrap());
            assert_eq!(parse_time_of_day(text), expected, "{text:?}");
        }
    }

    #[test]
    fn contains_table() {
        let ny = Some("America/New_York");
        let nightly = window("02:00", "05:00", ny, &[]);
        let fri_night = window("22:00", "02:00", None, &[Weekday::Fri]);
        let repeated_hour = window("01:00", "01:30", ny, &[]);
        let in_gap = window("02:00", "02:30", ny, &[]);
        let cases: &[(&str, &MaintenanceWindow, &str, bool)] = &[
            // An ordinary winter day, EST (UTC-5).
            ("opens at start", &nightly, "2025-03-08T07:00:00Z", true),
            (
                "closed before start",
                &nightly,
                "2025-03-08T06:59:59Z",
                false,
            ),
            ("open before end", &nightly, "2025-03-08T09:59:59Z", true),
            ("closed at end", &nightly, "2025-03-08T10:00:00Z", false),
            // Spring forward 2025-03-09: 02:00 EST becomes 03:00 EDT at 07:00Z.
            (
                "spring: 01:59 EST closed",
                &nightly,
                "2025-03-09T06:59:00Z",
                false,
            ),
            (
                "spring: 03:00 EDT open",
                &nightly,
                "2025-03-09T07:00:00Z",
                true,
            ),
            (
                "spring: 04:59 EDT open",
                &nightly,
                "2025-03-09T08:59:00Z",
                true,
            ),
            // A fixed UTC-5 offset would wrongly call this 04:00 and open.
            (
                "spring: 05:00 EDT closed",
                &nightly,
                "2025-03-09T09:00:00Z",
                false,
            ),
            (
                "spring: skipped window",
                &in_gap,
                "2025-03-09T07:00:00Z",
                false,
            ),
            // Fall back 2025-11-02: 02:00 EDT becomes 01:00 EST at 06:00Z; 01:00–01:59 happens twice.
            (
                "fall: 02:00 EST open",
                &nightly,
                "2025-11-02T07:00:00Z",
                true,
            ),
            (
                "fall: 01:59 EST closed",
                &nightly,
                "2025-11-02T06:59:00Z",
                false,
            ),
            (
                "fall: first 01:10 open",
                &repeated_hour,
                "2025-11-02T05:10:00Z",
                true,
            ),
            (
                "fall: first 01:45 closed",
                &repeated_hour,
                "2025-11-02T05:45:00Z",
                false,
            ),
            (
                "fall: second 01:10 open",
                &repeated_hour,
                "2025-11-02T06:10:00Z",
                true,
            ),
            // Wrapping past midnight; the day filter applies to the day the window starts (2025-06-06 is a
            // Friday).
            (
                "wrap: Fri 23:00 open",
                &fri_night,
                "2025-06-06T23:00:00Z",
                true,
            ),
            (
                "wrap: Sat 01:00 belongs to Fri",
                &fri_night,
                "2025-06-07T01:00:00Z",
                true,
            ),
            (
                "wrap: Sat 02:00 closed",
                &fri_night,
                "2025-06-07T02:00:00Z",
                false,
            ),
            (
                "wrap: Sat 23:00 closed",
                &fri_night,
                "2025-06-07T23:00:00Z",
                false,
            ),
            (
                "wrap: Fri 01:00 belongs to Thu",
                &fri_night,
                "2025-06-06T01:00:00Z",
                false,
            ),
        ];
        for (name, window, now, expected) in cases {
            assert_eq!(window.contains(utc(now)), *expected, "{name}");
        }
    }

    #[test]
    fn invalid_window_is_never_open_and_never_starts() {
        for bad in [
            window("25:00", "05:00", None, &[]),
            window("02:00", "5:00", None, &[]),
            window("02:00", "05:00", Some("Mars/Olympus"), &[]),
        ] {
            assert!(!bad.contains(utc("2025-06-06T03:00:00Z")), "{bad:?}");
            assert_eq!(bad.next_start(utc("2025-06-06T03:00:00Z")), None, "{bad:?}");
        }
    }

    #[test]
    fn next_start_table() {
        let ny = Some("America/New_York");
        let nightly = window("02:00", "05:00", ny, &[]);
        let cases: &[(&str, MaintenanceWindow, &str, &str)] = &[
            (
                "start in the spring gap opens when the gap ends",
                nightly.clone(),
                "2025-03-08T12:00:00Z",
                "2025-03-09T07:00:00Z",
            ),
            (
                "inside a window: the next day's opening, now in EDT",
                nightly.clone(),
                "2025-03-09T07:30:00Z",
                "2025-03-10T06:00:00Z",
            ),
            (
                "exactly at an opening: the next one",
                nightly,
                "2025-03-10T06:00:00Z",
                "2025-03-11T06:00:00Z",
            ),
            (
                "repeated hour: the window opens a second time",
                window("01:00", "01:30", ny, &[]),
                "2025-11-02T05:10:00Z",
                "2025-11-02T06:00:00Z",
            ),
            (
                "repeated hour: a long window opens only once",
                window("01:00", "04:00", ny, &[]),
                "2025-11-02T05:10:00Z",
                "2025-11-03T06:00:00Z",
            ),
            (
                "a window inside the gap skips the day",
                window("02:00", "02:30", ny, &[]),
                "2025-03-09T00:00:00Z",
                "2025-03-10T06:00:00Z",
            ),
            (
                "day filter: from Saturday to next Friday",
                window("22:00", "02:00", None, &[Weekday::Fri]),
                "2025-06-07T01:00:00Z",
                "2025-06-13T22:00:00Z",
            ),
            (
                "default timezone is UTC",
                window("02:00", "05:00", None, &[]),
                "2025-06-07T01:00:00Z",
                "2025-06-07T02:00:00Z",
            ),
        ];
        for (name, window, now, expected) in cases {
            assert_eq!(window.next_start(utc(now)), Some(utc(expected)), "{name}");
        }
    }
}
