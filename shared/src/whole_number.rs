//! JSON Schema counts `3.0` as an integer; serde's integer types do not. These accept any JSON
//! number with no fractional part, so what the OpenAPI document allows, the API accepts.

use serde::{de::Error, Deserialize, Deserializer};

fn whole<E: Error>(n: serde_json::Number) -> Result<i64, E> {
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(E::custom(format!("expected a whole number, got {n}"))),
    }
}

pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    whole(serde_json::Number::deserialize(d)?)
}

pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<serde_json::Number>::deserialize(d)?
        .map(whole)
        .transpose()
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::required")]
        n: i64,
        #[serde(default, deserialize_with = "super::optional")]
        m: Option<i64>,
    }

    #[test]
    fn whole_floats_are_integers_and_fractions_are_not() {
        let t: T = serde_json::from_str(r#"{"n": 3.0, "m": 400.0}"#).unwrap();
        assert_eq!((t.n, t.m), (3, Some(400)));
        let t: T = serde_json::from_str(r#"{"n": 7}"#).unwrap();
        assert_eq!((t.n, t.m), (7, None));
        assert!(serde_json::from_str::<T>(r#"{"n": 1.5}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"n": 1e300}"#).is_err());
    }
}
