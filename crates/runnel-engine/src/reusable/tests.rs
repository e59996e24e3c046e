//! `with:` values converted to the declared input types.

use runnel_expr::Value;
use runnel_workflow::InputType;

use super::typed_input;

#[test]
fn inputs_take_their_declared_type() {
    let text = |s: &str| Value::String(s.to_owned());
    let cases = [
        (InputType::String, Value::Null, Ok(text(""))),
        (InputType::String, Value::Bool(true), Ok(text("true"))),
        (InputType::String, Value::Number(456.0), Ok(text("456"))),
        (
            InputType::Boolean,
            Value::Bool(false),
            Ok(Value::Bool(false)),
        ),
        (InputType::Boolean, text("TRUE"), Ok(Value::Bool(true))),
        (
            InputType::Boolean,
            text("yes"),
            Err("boolean, got 'yes'".to_owned()),
        ),
        (InputType::Number, text(" 2.5 "), Ok(Value::Number(2.5))),
        (
            InputType::Number,
            text(""),
            Err("number, got ''".to_owned()),
        ),
        (
            InputType::Number,
            Value::Bool(true),
            Err("number, got true".to_owned()),
        ),
    ];
    for (input_type, given, expected) in cases {
        let shown = format!("{input_type:?} {given:?}");
        let shape = |v: Value| (v.kind_name(), v.to_display_string());
        let got = typed_input(input_type, given).map(shape);
        let expected = expected.map(shape);
        assert_eq!(got, expected, "{shown}");
    }
}
