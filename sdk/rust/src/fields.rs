//! Field values and their conversion to Rust types.

use std::fmt;

pub use crate::__private::syncplane::plugin::types::Value;

/// A field was missing or had another type than the model declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// The fields of an object as the host sent them.
#[derive(Debug, Clone)]
pub struct Fields(pub Vec<(String, Value)>);

impl Fields {
    /// The raw value of a field.
    pub fn raw(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// A field converted to `T`.
    ///
    /// # Errors
    ///
    /// When the field is missing or of another type.
    pub fn get<T: FromValue>(&self, name: &str) -> Result<T, FieldError> {
        T::from_value(self.raw(name)).map_err(|message| FieldError {
            field: name.to_owned(),
            message,
        })
    }
}

/// Conversion from a field value.
pub trait FromValue: Sized {
    /// Converts `value` (`None` when the field is absent).
    ///
    /// # Errors
    ///
    /// A description of the mismatch.
    fn from_value(value: Option<&Value>) -> Result<Self, String>;
}

fn mismatch(expected: &str, got: Option<&Value>) -> String {
    format!("expected {expected}, got {got:?}")
}

impl FromValue for String {
    fn from_value(value: Option<&Value>) -> Result<Self, String> {
        match value {
            Some(Value::Text(s)) => Ok(s.clone()),
            other => Err(mismatch("text", other)),
        }
    }
}

impl FromValue for bool {
    fn from_value(value: Option<&Value>) -> Result<Self, String> {
        match value {
            Some(Value::Boolean(b)) => Ok(*b),
            other => Err(mismatch("a boolean", other)),
        }
    }
}

impl FromValue for i64 {
    fn from_value(value: Option<&Value>) -> Result<Self, String> {
        match value {
            Some(Value::Integer(i)) => Ok(*i),
            other => Err(mismatch("an integer", other)),
        }
    }
}

impl FromValue for f64 {
    fn from_value(value: Option<&Value>) -> Result<Self, String> {
        match value {
            Some(Value::Float(f)) => Ok(*f),
            Some(Value::Integer(i)) => Ok(*i as f64),
            other => Err(mismatch("a number", other)),
        }
    }
}

/// A `repeated` field. The host keeps at most one value per field today,
/// so an unset field is an empty list and a set one a list of that value.
impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(value: Option<&Value>) -> Result<Self, String> {
        match value {
            None | Some(Value::Null) => Ok(Vec::new()),
            some => T::from_value(some).map(|v| vec![v]),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Option<&Value>) -> Result<Self, String> {
        match value {
            None | Some(Value::Null) => Ok(None),
            some => T::from_value(some).map(Some),
        }
    }
}
