//! Human durations for configuration and links: `90s`, `15m`, `12h`, `30d`, `2w`.

pub fn parse_secs(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration (try 90s, 15m, 12h, 30d)"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!("{s:?} has an unknown unit {unit:?} (use s, m, h, d or w)"));
        }
    };
    n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too long"))
}

/// Seconds (configuration, policies) to epoch-millisecond arithmetic, saturating so a
/// huge configured value means "practically never" instead of wrapping.
pub fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX / 1000).saturating_mul(1000)
}

pub fn format_secs(s: u64) -> String {
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= size && s % size == 0 {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (text, secs) in
            [("90s", 90), ("15m", 900), ("12h", 43_200), ("30d", 2_592_000), ("2w", 1_209_600), ("7", 7)]
        {
            assert_eq!(parse_secs(text), Ok(secs), "{text}");
        }
        assert_eq!(format_secs(2_592_000), "30d");
        assert_eq!(format_secs(90), "90s");
        assert_eq!(format_secs(3600), "1h");
        assert!(parse_secs("3 days").is_err());
        assert!(parse_secs("").is_err());
        assert!(parse_secs("99999999999999999999w").is_err());
        assert_eq!(secs_to_ms(3), 3000);
        assert_eq!(secs_to_ms(u64::MAX), (i64::MAX / 1000) * 1000);
    }
}
