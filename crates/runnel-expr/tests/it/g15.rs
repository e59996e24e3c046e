//! placeholder
#[test]
fn probe() {
    let v: serde_json::Value = serde_json::from_str("-0").unwrap_or_default();
    println!("{v:?} {:?} {:?}", v.as_i64(), v.as_f64().map(f64::is_sign_negative));
}
