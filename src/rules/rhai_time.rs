//! Time functions for expressions: pure and deterministic (the instant is
//! always an argument, `now` being a fact), reading the time zone data built
//! into the binary (never the host's), so the same facts give the same
//! decision anywhere.
//!
//! | function | returns |
//! |---|---|
//! | `duration_secs("1h30m")` | seconds of a duration (the rules' syntax) |
//! | `clock_minutes("22:30")` | minutes after midnight of a wall-clock time |
//! | `minutes_of_day(t, "Europe/Berlin")` | minutes after local midnight at `t` |
//! | `day_of_week(t, zone)` | local weekday at `t`, 1 = Monday … 7 = Sunday |
//! | `next_time_of_day(t, zone, "02:00")` | the first instant after `t` when the local clock reads 02:00 |

use std::sync::OnceLock;

use jiff::civil::Time;
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{Timestamp, Zoned};
use rhai::{EvalAltResult, Module, INT};

use super::duration::parse_duration;

type Fallible<T> = Result<T, Box<EvalAltResult>>;

fn zones() -> &'static TimeZoneDatabase {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DB.get_or_init(TimeZoneDatabase::bundled)
}

fn zone(name: &str) -> Fallible<TimeZone> {
    zones().get(name).map_err(|_| {
        format!("unknown time zone {name:?} (an IANA name such as \"Europe/Berlin\" or \"UTC\")")
            .into()
    })
}

fn instant(t: INT) -> Fallible<Timestamp> {
    Timestamp::from_second(t).map_err(|e| format!("{t} is not a valid time: {e}").into())
}

fn local(t: INT, zone_name: &str) -> Fallible<Zoned> {
    Ok(instant(t)?.to_zoned(zone(zone_name)?))
}

/// `HH:MM` (24-hour) as a civil time.
fn clock(text: &str) -> Fallible<Time> {
    let bad = || -> Box<EvalAltResult> {
        format!("{text:?} is not a time of day (HH:MM, 00:00 to 23:59)").into()
    };
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

fn duration_secs(text: &str) -> Fallible<INT> {
    let d = parse_duration(text).map_err(|e| -> Box<EvalAltResult> { e.to_string().into() })?;
    INT::try_from(d.as_secs()).map_err(|_| format!("duration {text:?} is too long").into())
}

fn clock_minutes(text: &str) -> Fallible<INT> {
    let c = clock(text)?;
    Ok(INT::from(c.hour()) * 60 + INT::from(c.minute()))
}

fn minutes_of_day(t: INT, zone_name: &str) -> Fallible<INT> {
    let z = local(t, zone_name)?;
    Ok(INT::from(z.hour()) * 60 + INT::from(z.minute()))
}

fn day_of_week(t: INT, zone_name: &str) -> Fallible<INT> {
    Ok(INT::from(
        local(t, zone_name)?.weekday().to_monday_one_offset(),
    ))
}

/// The first instant strictly after `t` at which the local clock of
/// `zone_name` reads `at`. On a day where that time does not exist (inside a
/// daylight-saving gap) it is moved forward by the gap (02:30 → 03:30).
fn next_time_of_day(t: INT, zone_name: &str, at: &str) -> Fallible<INT> {
    let c = clock(at)?;
    let tz = zone(zone_name)?;
    let start = instant(t)?;
    let mut day = start.to_zoned(tz.clone()).date();
    // Today, tomorrow, or (across a gap at that time) the day after.
    for _ in 0..3 {
        let candidate = day
            .to_datetime(c)
            .to_zoned(tz.clone())
            .map_err(|e| -> Box<EvalAltResult> { e.to_string().into() })?
            .timestamp();
        if candidate > start {
            return Ok(candidate.as_second());
        }
        day = day
            .tomorrow()
            .map_err(|e| -> Box<EvalAltResult> { e.to_string().into() })?;
    }
    Err(format!("no {at} after {start} in {zone_name}").into())
}

/// The module registered into every rule set's engine.
pub(crate) fn time_functions() -> Module {
    let mut m = Module::new();
    m.set_native_fn("duration_secs", |s: &str| duration_secs(s));
    m.set_native_fn("clock_minutes", |s: &str| clock_minutes(s));
    m.set_native_fn("minutes_of_day", |t: INT, z: &str| minutes_of_day(t, z));
    m.set_native_fn("day_of_week", |t: INT, z: &str| day_of_week(t, z));
    m.set_native_fn("next_time_of_day", |t: INT, z: &str, at: &str| {
        next_time_of_day(t, z, at)
    });
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> INT {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn local_time_in_a_zone() {
        // 2026-03-01 is a Sunday; Berlin is UTC+1 in winter.
        let at = t("2026-03-01T22:30:00Z");
        assert_eq!(minutes_of_day(at, "Europe/Berlin").unwrap(), 23 * 60 + 30);
        assert_eq!(day_of_week(at, "Europe/Berlin").unwrap(), 7);
        assert_eq!(minutes_of_day(at, "UTC").unwrap(), 22 * 60 + 30);
        // Past midnight in Tokyo: Monday.
        assert_eq!(day_of_week(at, "Asia/Tokyo").unwrap(), 1);
    }

    #[test]
    fn next_time_of_day_is_strictly_later_and_respects_dst() {
        let at = t("2026-03-01T10:00:00Z"); // 11:00 in Berlin
        assert_eq!(
            next_time_of_day(at, "Europe/Berlin", "02:00").unwrap(),
            t("2026-03-02T01:00:00Z")
        );
        assert_eq!(
            next_time_of_day(at, "Europe/Berlin", "11:00").unwrap(),
            t("2026-03-02T10:00:00Z"),
            "the same minute is not 'after'"
        );
        // 2026-03-29: Berlin skips 02:00-03:00; 02:30 that day reads as 03:30 CEST.
        let before_gap = t("2026-03-28T12:00:00Z");
        assert_eq!(
            next_time_of_day(before_gap, "Europe/Berlin", "02:30").unwrap(),
            t("2026-03-29T01:30:00Z")
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(minutes_of_day(0, "Mars/Olympus")
            .unwrap_err()
            .to_string()
            .contains("unknown time zone"));
        assert!(clock_minutes("25:00").is_err());
        assert!(clock_minutes("7").is_err());
        assert_eq!(clock_minutes("07:05").unwrap(), 425);
        assert_eq!(duration_secs("1h30m").unwrap(), 5400);
        assert!(duration_secs("soon").is_err());
        assert!(next_time_of_day(INT::MAX, "UTC", "01:00").is_err());
    }
}
