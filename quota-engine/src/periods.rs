//! Calendar periods in the operator's time zone.
//!
//! A day runs from local midnight to the next local midnight (23 or 25 hours across a DST
//! change); a month from the 1st at local midnight. Each period has a label that the counters
//! store (`2026-11-29`, `2026-11`) and a reset instant (for `Retry-After` and messages).

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// The time zone in which quotas reset. Cheap to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Periods {
    tz: Tz,
}

/// The day and month that contain one instant, with their labels and reset instants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodKeys {
    /// `YYYY-MM-DD`, the local date.
    pub day: String,
    /// `YYYY-MM`.
    pub month: String,
    pub day_start: DateTime<Tz>,
    /// The next local midnight.
    pub day_resets_at: DateTime<Tz>,
    pub month_start: DateTime<Tz>,
    /// The 1st of the next month at local midnight.
    pub month_resets_at: DateTime<Tz>,
}

impl Periods {
    pub fn new(tz: Tz) -> Periods {
        Periods { tz }
    }

    /// Parses an IANA zone name such as `Europe/Berlin`.
    pub fn from_name(name: &str) -> Option<Periods> {
        name.parse::<Tz>().ok().map(Periods::new)
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The periods that contain `now`.
    pub fn at(&self, now: DateTime<Utc>) -> PeriodKeys {
        let local = now.with_timezone(&self.tz);
        let date = local.date_naive();
        let next_day = date.checked_add_days(Days::new(1)).unwrap_or(date);
        let month_first = date.with_day(1).unwrap_or(date);
        let next_month_first = first_of_next_month(month_first);
        PeriodKeys {
            day: date.format("%Y-%m-%d").to_string(),
            month: date.format("%Y-%m").to_string(),
            day_start: self.midnight(date),
            day_resets_at: self.midnight(next_day),
            month_start: self.midnight(month_first),
            month_resets_at: self.midnight(next_month_first),
        }
    }

    /// The local label of the day containing `now`.
    pub fn day_label(&self, now: DateTime<Utc>) -> String {
        now.with_timezone(&self.tz)
            .date_naive()
            .format("%Y-%m-%d")
            .to_string()
    }

    /// The first instant of `date` in this zone. Where a DST change skips midnight (some zones
    /// switch at 00:00), the day starts at the first local time that exists.
    pub fn midnight(&self, date: NaiveDate) -> DateTime<Tz> {
        let mut naive = date.and_hms_opt(0, 0, 0).unwrap_or_default();
        // A DST gap is at most a few hours; step forward a quarter hour at a time.
        for _ in 0..16 {
            match self.tz.from_local_datetime(&naive) {
                LocalResult::Single(t) => return t,
                LocalResult::Ambiguous(earliest, _) => return earliest,
                LocalResult::None => naive += chrono::Duration::minutes(15),
            }
        }
        self.tz.from_utc_datetime(&naive)
    }
}

fn first_of_next_month(first: NaiveDate) -> NaiveDate {
    let (y, m) = if first.month() == 12 {
        (first.year() + 1, 1)
    } else {
        (first.year(), first.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn berlin() -> Periods {
        Periods::from_name("Europe/Berlin").unwrap()
    }

    /// A Berlin day in winter starts at 23:00 UTC the evening before and resets at local midnight.
    #[test]
    fn berlin_winter_day() {
        let k = berlin().at(utc("2026-11-29T23:30:00Z"));
        assert_eq!(k.day, "2026-11-30");
        assert_eq!(k.month, "2026-11");
        assert_eq!(k.day_start.to_rfc3339(), "2026-11-30T00:00:00+01:00");
        assert_eq!(k.day_resets_at.to_rfc3339(), "2026-12-01T00:00:00+01:00");
        assert_eq!(k.month_resets_at.to_rfc3339(), "2026-12-01T00:00:00+01:00");
    }

    /// The spring-forward day (2026-03-29 in Berlin) lasts 23 hours.
    #[test]
    fn berlin_spring_forward_is_23_hours() {
        let k = berlin().at(utc("2026-03-29T12:00:00Z"));
        assert_eq!(k.day, "2026-03-29");
        assert_eq!((k.day_resets_at - k.day_start).num_hours(), 23);
        assert_eq!(k.day_resets_at.to_rfc3339(), "2026-03-30T00:00:00+02:00");
    }

    /// The fall-back day (2026-10-25 in Berlin) lasts 25 hours, and both 02:30s belong to it.
    #[test]
    fn berlin_fall_back_is_25_hours() {
        let p = berlin();
        let k = p.at(utc("2026-10-25T00:30:00Z")); // 02:30 CEST
        assert_eq!((k.day_resets_at - k.day_start).num_hours(), 25);
        assert_eq!(p.at(utc("2026-10-25T01:30:00Z")).day, "2026-10-25"); // 02:30 CET
        assert_eq!(p.at(utc("2026-10-25T22:59:59Z")).day, "2026-10-25");
        assert_eq!(p.at(utc("2026-10-25T23:00:00Z")).day, "2026-10-26");
    }

    /// Month ends: December rolls into the next year, February knows leap years.
    #[test]
    fn month_ends_and_leap_day() {
        let p = berlin();
        let dec = p.at(utc("2026-12-31T22:59:59Z"));
        assert_eq!(dec.month, "2026-12");
        assert_eq!(
            dec.month_resets_at.to_rfc3339(),
            "2027-01-01T00:00:00+01:00"
        );
        assert_eq!(p.at(utc("2026-12-31T23:00:00Z")).month, "2027-01");
        let leap = p.at(utc("2028-02-29T12:00:00Z"));
        assert_eq!(leap.day, "2028-02-29");
        assert_eq!(leap.day_resets_at.to_rfc3339(), "2028-03-01T00:00:00+01:00");
        assert_eq!(
            leap.month_resets_at.to_rfc3339(),
            "2028-03-01T00:00:00+01:00"
        );
        let feb = p.at(utc("2027-02-28T12:00:00Z"));
        assert_eq!(
            feb.month_resets_at.to_rfc3339(),
            "2027-03-01T00:00:00+01:00"
        );
    }

    /// UTC has plain 24-hour days.
    #[test]
    fn utc_days() {
        let p = Periods::from_name("UTC").unwrap();
        let k = p.at(utc("2026-11-29T23:59:59Z"));
        assert_eq!(k.day, "2026-11-29");
        assert_eq!(k.day_resets_at.to_rfc3339(), "2026-11-30T00:00:00+00:00");
        assert_eq!(p.at(utc("2026-11-30T00:00:00Z")).day, "2026-11-30");
    }

    /// New York: the day follows local midnight, including its own DST dates.
    #[test]
    fn new_york() {
        let p = Periods::from_name("America/New_York").unwrap();
        let k = p.at(utc("2026-11-30T03:00:00Z")); // 22:00 on the 29th local
        assert_eq!(k.day, "2026-11-29");
        assert_eq!(k.day_resets_at.to_rfc3339(), "2026-11-30T00:00:00-05:00");
        let spring = p.at(utc("2026-03-08T12:00:00Z"));
        assert_eq!((spring.day_resets_at - spring.day_start).num_hours(), 23);
        let fall = p.at(utc("2026-11-01T12:00:00Z"));
        assert_eq!((fall.day_resets_at - fall.day_start).num_hours(), 25);
    }

    /// A zone whose DST change skips midnight still gets a day start (the first existing time).
    #[test]
    fn midnight_gap() {
        // America/Santiago springs forward at 24:00 → 01:00 (2026-09-06).
        let p = Periods::from_name("America/Santiago").unwrap();
        let start = p.midnight(NaiveDate::from_ymd_opt(2026, 9, 6).unwrap());
        assert_eq!(start.to_rfc3339(), "2026-09-06T01:00:00-03:00");
    }

    /// Unknown zone names are refused.
    #[test]
    fn unknown_zone() {
        assert!(Periods::from_name("Europe/Berlinn").is_none());
    }
}
