//! Matrix expansion exactly as GitHub documents it: Cartesian product in key declaration
//! order (first key slowest), `exclude` before `include`, and `include` merging into matching
//! combinations or being appended as a new one.
//!
//! Owns: [`MatrixSpec`] (a matrix already evaluated to values), [`expand_matrix`], deep value
//! equality for matching, and the limits (no empty matrix, at most 256 legs).
//! Must not: evaluate expressions (the caller turns `${{ }}` into values first).

use runnel_expr::{Object, Value};

/// GitHub's per-matrix job limit.
pub const MAX_MATRIX_LEGS: usize = 256;
/// Largest Cartesian product built before excludes are applied.
const MAX_PRODUCT_BEFORE_EXCLUDE: usize = 1 << 16;

/// An evaluated `strategy.matrix`.
#[derive(Debug, Clone, Default)]
pub struct MatrixSpec {
    /// Dimensions in declaration order: key and its values.
    pub dimensions: Vec<(String, Vec<Value>)>,
    pub include: Vec<Object>,
    pub exclude: Vec<Object>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatrixError {
    #[error("matrix must define at least one vector")]
    NoVectors,
    #[error("matrix vector `{key}` does not contain any values")]
    EmptyVector { key: String },
    #[error("matrix vector `{key}` must be a list, found {kind}")]
    VectorNotList { key: String, kind: &'static str },
    #[error("matrix `{key}` must be a list of mappings, found an item of kind {kind}")]
    EntryNotMapping {
        key: &'static str,
        kind: &'static str,
    },
    #[error("matrix must be a mapping, found {kind}")]
    NotMapping { kind: &'static str },
    #[error("matrix expands to no combinations (every one is excluded)")]
    NoCombinations,
    #[error("matrix expands to {count} jobs; at most {MAX_MATRIX_LEGS} are allowed")]
    TooManyLegs { count: usize },
}

impl MatrixSpec {
    /// Reads a matrix given as one value (e.g. the result of `${{ fromJSON(...) }}`): a
    /// mapping whose `include`/`exclude` keys are lists of mappings and whose other keys are
    /// lists.
    pub fn from_value(value: &Value) -> Result<MatrixSpec, MatrixError> {
        let Value::Object(object) = value else {
            return Err(MatrixError::NotMapping {
                kind: value.kind_name(),
            });
        };
        let mut spec = MatrixSpec::default();
        for (key, item) in object.iter() {
            if key.eq_ignore_ascii_case("include") {
                spec.include = entries("include", item)?;
            } else if key.eq_ignore_ascii_case("exclude") {
                spec.exclude = entries("exclude", item)?;
            } else {
                match item {
                    Value::Array(values) => spec.dimensions.push((key.to_owned(), values.to_vec())),
                    other => {
                        return Err(MatrixError::VectorNotList {
                            key: key.to_owned(),
                            kind: other.kind_name(),
                        });
                    }
                }
            }
        }
        Ok(spec)
    }
}

fn entries(key: &'static str, value: &Value) -> Result<Vec<Object>, MatrixError> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(object) => Ok(object.as_ref().clone()),
                other => Err(MatrixError::EntryNotMapping {
                    key,
                    kind: other.kind_name(),
                }),
            })
            .collect(),
        // `include: ${{ … }}` evaluating to null behaves as absent.
        Value::Null => Ok(Vec::new()),
        other => Err(MatrixError::EntryNotMapping {
            key,
            kind: other.kind_name(),
        }),
    }
}

/// Expands a matrix into its legs, each an object of key → value in display order (original
/// dimensions first, then keys added by `include`, in the order they were first added).
pub fn expand_matrix(spec: &MatrixSpec) -> Result<Vec<Object>, MatrixError> {
    if spec.dimensions.is_empty() && spec.include.is_empty() {
        return Err(MatrixError::NoVectors);
    }
    if let Some((key, _)) = spec.dimensions.iter().find(|(_, values)| values.is_empty()) {
        return Err(MatrixError::EmptyVector { key: key.clone() });
    }

    // Excludes may shrink a large product below the limit, but building millions of objects
    // to find out is not worth it: refuse products far beyond anything that could pass.
    let raw_size = spec.dimensions.iter().fold(1usize, |size, (_, values)| {
        size.saturating_mul(values.len())
    });
    if raw_size > MAX_PRODUCT_BEFORE_EXCLUDE {
        return Err(MatrixError::TooManyLegs { count: raw_size });
    }
    let mut combinations = product(&spec.dimensions);
    combinations.retain(|combination| {
        !spec
            .exclude
            .iter()
            .any(|entry| is_subset(entry, combination))
    });

    let is_dimension = |key: &str| {
        spec.dimensions
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(key))
    };
    let mut appended: Vec<Object> = Vec::new();
    for entry in &spec.include {
        let mut merged = false;
        for combination in &mut combinations {
            let conflicts = entry.iter().any(|(key, value)| {
                is_dimension(key)
                    && combination
                        .get(key)
                        .is_none_or(|existing| !deep_equal(existing, value))
            });
            if !conflicts {
                for (key, value) in entry.iter() {
                    // Original dimension values are equal here; other keys (possibly from an
                    // earlier include) are overwritten, keeping their position.
                    combination.insert(key, value.clone());
                }
                merged = true;
            }
        }
        if !merged {
            appended.push(entry.clone());
        }
    }
    combinations.extend(appended);

    if combinations.is_empty() {
        return Err(MatrixError::NoCombinations);
    }
    if combinations.len() > MAX_MATRIX_LEGS {
        return Err(MatrixError::TooManyLegs {
            count: combinations.len(),
        });
    }
    Ok(combinations)
}

/// Cartesian product, first dimension slowest. No dimensions → no combinations (an
/// include-only matrix makes its legs from the include entries alone).
fn product(dimensions: &[(String, Vec<Value>)]) -> Vec<Object> {
    if dimensions.is_empty() {
        return Vec::new();
    }
    let mut combinations = vec![Object::new()];
    for (key, values) in dimensions {
        let mut next = Vec::with_capacity(combinations.len() * values.len());
        for combination in &combinations {
            for value in values {
                let mut extended = combination.clone();
                extended.insert(key.as_str(), value.clone());
                next.push(extended);
            }
        }
        combinations = next;
    }
    combinations
}

/// Every key of `entry` is in `combination` with a deeply equal value.
fn is_subset(entry: &Object, combination: &Object) -> bool {
    entry.iter().all(|(key, value)| {
        combination
            .get(key)
            .is_some_and(|existing| deep_equal(existing, value))
    })
}

/// Structural equality (GitHub's `==` on arrays/objects is identity, which is not what matrix
/// matching means). Strings compare exactly; object keys case-insensitively, order ignored.
pub fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, value)| y.get(key).is_some_and(|other| deep_equal(value, other)))
        }
        _ => false,
    }
}
