//! Exact money: integer minor units plus an ISO currency code. Never an f64 sum.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

use crate::error::ParseError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Amount in the currency's minor unit (cents for BRL).
    pub minor: i64,
    pub currency: String,
}

/// Digits after the decimal point (the minor unit) per ISO 4217 (list one, amendment 179):
/// every active code whose minor unit is not 2. Codes without a minor unit (gold, SDR,
/// test codes) never price a sale and take the default 2.
pub fn exponent(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "UYI"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

impl Money {
    /// Reads Hotmart's `{value: 93.98}` from the number's decimal text, so 93.98 is 9398
    /// cents exactly (no binary float on the way). Extra digits round half away from zero.
    pub fn from_value(
        value: &Value,
        currency: Option<&str>,
        field: &'static str,
    ) -> Result<Self, ParseError> {
        let currency =
            currency.map(str::trim).filter(|c| c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()));
        let currency = currency
            .ok_or(ParseError::Invalid { field, reason: "missing or invalid currency_value".into() })?
            .to_ascii_uppercase();
        let text = match value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.trim().to_string(),
            _ => {
                return Err(ParseError::Invalid { field, reason: "amount is not a number".into() });
            }
        };
        let minor = parse_decimal(&text, exponent(&currency))
            .ok_or(ParseError::Invalid { field, reason: format!("{text:?} is not an amount") })?;
        Ok(Self { minor, currency })
    }

    pub fn negate(&self) -> Self {
        Self { minor: -self.minor, currency: self.currency.clone() }
    }

    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exp = exponent(&self.currency);
        if exp == 0 {
            return write!(f, "{} {}", self.minor, self.currency);
        }
        let scale = 10i64.pow(exp);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            abs / scale as u64,
            abs % scale as u64,
            self.currency,
            width = exp as usize
        )
    }
}

/// "93.98" -> 9398 with exp 2; accepts an exponent suffix ("1e2") as serde_json may print.
fn parse_decimal(text: &str, exp: u32) -> Option<i64> {
    let (mantissa, e10) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (neg, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.chars().chain(frac_part.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    // All digits as one integer, then shift the decimal point by (exp + e10 - frac_len).
    let all: String = format!("{int_part}{frac_part}");
    let all = all.trim_start_matches('0');
    // Checked: the exponent and the digit count come from the sender (fuzzing found
    // "1e2147483647" and 40 fraction digits overflowing here).
    let shift = (exp as i32).checked_add(e10)?.checked_sub(i32::try_from(frac_part.len()).ok()?)?;
    let mut n: i128 = if all.is_empty() { 0 } else { all.parse().ok()? };
    if shift >= 0 {
        if n != 0 {
            n = n.checked_mul(10i128.checked_pow(shift.unsigned_abs())?)?;
        }
    } else {
        n = match 10i128.checked_pow(shift.unsigned_abs()) {
            // Half up: r >= div - r is r * 2 >= div without overflowing.
            Some(div) => {
                let (q, r) = (n / div, n % div);
                if r >= div - r { q + 1 } else { q }
            }
            // A divisor past i128 (10^39 and up) exceeds twice any n: rounds to zero.
            None => 0,
        };
    }
    let n = i64::try_from(n).ok()?;
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value, c: &str) -> Money {
        Money::from_value(&v, Some(c), "x").unwrap()
    }

    #[test]
    fn parses_exact_minor_units() {
        assert_eq!(m(json!(93.98), "BRL").minor, 9398);
        assert_eq!(m(json!(119.4), "BRL").minor, 11940);
        assert_eq!(m(json!(0.1), "USD").minor, 10);
        assert_eq!(m(json!(7), "BRL").minor, 700);
        assert_eq!(m(json!(5000), "CLP").minor, 5000);
        assert_eq!(m(json!("12.345"), "BRL").minor, 1235);
        assert_eq!(m(json!(-3.5), "brl"), Money { minor: -350, currency: "BRL".into() });
        assert_eq!(m(json!(1e2), "BRL").minor, 10000);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Money::from_value(&json!("abc"), Some("BRL"), "x").is_err());
        assert!(Money::from_value(&json!(1.0), None, "x").is_err());
        assert!(Money::from_value(&json!(1.0), Some("R$"), "x").is_err());
        assert!(Money::from_value(&json!(true), Some("BRL"), "x").is_err());
        assert!(Money::from_value(&json!("1e400"), Some("BRL"), "x").is_err());
        // Found by fuzzing: these overflowed (a panic, not a 400) before.
        assert!(Money::from_value(&json!("1e2147483647"), Some("BRL"), "x").is_err());
        assert!(Money::from_value(&json!("0.001e-2147483648"), Some("BRL"), "x").is_err());
        assert_eq!(m(json!("0.0090000000000000000000000000000000000000"), "BRL").minor, 1);
        assert_eq!(m(json!("0.00000000000000000000000000000000000000000009"), "BRL").minor, 0);
        assert!(Money::from_value(&json!("0e2147483647"), Some("BRL"), "x").is_err());
    }

    #[test]
    fn iso_4217_minor_units_are_kept() {
        // Three decimals: 12.345 is 12345 fils, not 1235 "cents".
        for c in ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"] {
            assert_eq!(m(json!(12.345), c).minor, 12_345, "{c}");
            assert_eq!(exponent(c), 3, "{c}");
        }
        for c in ["CLF", "UYW"] {
            assert_eq!(m(json!("1.2345"), c).minor, 12_345, "{c}");
        }
        for c in [
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV",
            "XAF", "XOF", "XPF",
        ] {
            assert_eq!(m(json!(1500), c).minor, 1_500, "{c}");
            assert_eq!(exponent(c), 0, "{c}");
        }
        assert_eq!(m(json!(12.5), "JPY").minor, 13, "a fraction of a zero-decimal unit rounds half up");
        for c in ["BRL", "USD", "EUR", "MXN", "COP", "HUF", "TWD"] {
            assert_eq!(exponent(c), 2, "{c}");
        }
        assert_eq!(Money { minor: 12_345, currency: "KWD".into() }.to_string(), "12.345 KWD");
        assert_eq!(Money { minor: -5, currency: "BHD".into() }.to_string(), "-0.005 BHD");
        assert_eq!(Money { minor: 12_345, currency: "CLF".into() }.to_string(), "1.2345 CLF");
    }

    #[test]
    fn displays_with_currency_exponent() {
        assert_eq!(Money { minor: 9398, currency: "BRL".into() }.to_string(), "93.98 BRL");
        assert_eq!(Money { minor: -5, currency: "USD".into() }.to_string(), "-0.05 USD");
        assert_eq!(Money { minor: 5000, currency: "CLP".into() }.to_string(), "5000 CLP");
    }
}
