//! The values the command lines take, parsed once for every subcommand: durations in seconds
//! or milliseconds, intervals that must not be zero, loss rates (NAT preset names are a
//! `clap::ValueEnum`, next to the presets). Each parser
//! returns a typed [`ValueError`]; clap puts it after the option and the value it refused
//! (`invalid value '-5' for '--delay <MS>': …`) and exits 2.

use std::time::Duration;

/// The longest duration any option takes: about 31 years. Longer ones would overflow the
/// clock (`Instant + Duration`) of the simulator or of the real-time loop.
pub const MAX_SECONDS: f64 = 1e9;

/// Why a value was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValueError {
    /// Not a number at all.
    #[error("not a number ({0})")]
    NotANumber(#[from] std::num::ParseFloatError),
    /// NaN.
    #[error("not a number (NaN)")]
    NaN,
    /// Infinite, or longer than [`MAX_SECONDS`].
    #[error("too large: at most {MAX_SECONDS:e} seconds")]
    TooLarge,
    /// Below zero.
    #[error("must not be negative")]
    Negative,
    /// Below [`MIN_INTERVAL`] (zero among them) where it would make something repeat
    /// without end, or so often that the run never ends.
    #[error("must be at least 1 ms (0 would repeat it without end)")]
    TooShort,
    /// A loss rate outside 0..1 (or 0%..100%).
    #[error("a fraction from 0 to 1, or a percentage from 0% to 100%")]
    LossOutOfRange,
}

/// A finite, non-negative number of `unit`s (1.0 for seconds, 1e-3 for milliseconds).
fn duration(value: &str, unit: f64) -> Result<Duration, ValueError> {
    let number: f64 = value.trim().parse()?;
    if number.is_nan() {
        return Err(ValueError::NaN);
    }
    if number < 0.0 {
        return Err(ValueError::Negative);
    }
    let secs = number * unit;
    if secs > MAX_SECONDS {
        return Err(ValueError::TooLarge);
    }
    // Finite, 0 ≤ secs ≤ MAX_SECONDS: in range for a Duration.
    Duration::try_from_secs_f64(secs).map_err(|_| ValueError::TooLarge)
}

/// A number of seconds, `0` allowed (`--hold 0`, `--timeout 2.5`).
pub fn seconds(value: &str) -> Result<Duration, ValueError> {
    duration(value, 1.0)
}

/// A number of milliseconds, `0` allowed (`--delay 10`).
pub fn millis(value: &str) -> Result<Duration, ValueError> {
    duration(value, 1e-3)
}

/// The shortest period an interval option takes.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// A period in seconds, at least [`MIN_INTERVAL`]: at zero the timer it sets would fire again
/// at once, and at a nanosecond a simulated minute would take a billion firings.
pub fn interval(value: &str) -> Result<Duration, ValueError> {
    let d = seconds(value)?;
    if d < MIN_INTERVAL {
        return Err(ValueError::TooShort);
    }
    Ok(d)
}

/// An interval, or none (`off`). A type of its own: clap takes an `Option` field for an
/// option that may be left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntervalOrOff(pub Option<Duration>);

/// An interval in seconds, or `off`.
pub fn interval_or_off(value: &str) -> Result<IntervalOrOff, ValueError> {
    match value {
        "off" => Ok(IntervalOrOff(None)),
        _ => interval(value).map(|d| IntervalOrOff(Some(d))),
    }
}

/// A loss probability: a fraction (`0.1`) or a percentage (`10%`).
pub fn loss(value: &str) -> Result<f64, ValueError> {
    let (number, scale) = match value.strip_suffix('%') {
        Some(percent) => (percent, 100.0),
        None => (value, 1.0),
    };
    let fraction = number.trim().parse::<f64>()? / scale;
    if fraction.is_nan() {
        return Err(ValueError::NaN);
    }
    if !(0.0..=1.0).contains(&fraction) {
        return Err(ValueError::LossOutOfRange);
    }
    Ok(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_refuse_what_would_panic_or_never_end() {
        assert_eq!(seconds("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(seconds("0"), Ok(Duration::ZERO));
        assert_eq!(millis("10"), Ok(Duration::from_millis(10)));
        assert_eq!(seconds("-1"), Err(ValueError::Negative));
        assert_eq!(millis("-5"), Err(ValueError::Negative));
        assert_eq!(seconds("nan"), Err(ValueError::NaN));
        assert_eq!(seconds("inf"), Err(ValueError::TooLarge));
        assert_eq!(seconds("1e10"), Err(ValueError::TooLarge));
        assert_eq!(seconds("1e9"), Ok(Duration::from_secs(1_000_000_000)));
        assert!(matches!(seconds("soon"), Err(ValueError::NotANumber(_))));
        assert_eq!(interval("0"), Err(ValueError::TooShort));
        assert_eq!(interval("1e-9"), Err(ValueError::TooShort));
        assert_eq!(interval("0.001"), Ok(MIN_INTERVAL));
        assert_eq!(interval("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(interval_or_off("off"), Ok(IntervalOrOff(None)));
        assert_eq!(interval_or_off("0"), Err(ValueError::TooShort));
    }

    #[test]
    fn loss_takes_fractions_and_percentages() {
        assert_eq!(loss("10%"), Ok(0.1));
        assert_eq!(loss("0.25"), Ok(0.25));
        assert_eq!(loss("101%"), Err(ValueError::LossOutOfRange));
        assert_eq!(loss("-0.1"), Err(ValueError::LossOutOfRange));
        assert_eq!(loss("nan%"), Err(ValueError::NaN));
        assert!(matches!(loss("%"), Err(ValueError::NotANumber(_))));
    }
}
