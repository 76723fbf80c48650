//! The bookkeeping every model carries (XOS's `XOSBase`), named in one
//! place: field names as constants, and the codes as enums.

use serde_json::Value;

use crate::object::Object;

/// Bookkeeping field names, as the API and the store spell them.
pub mod field {
    /// When the object was created (seconds since the epoch).
    pub const CREATED: &str = "created";
    /// When a user last changed it.
    pub const UPDATED: &str = "updated";
    /// When its latest version was enacted.
    pub const ENACTED: &str = "enacted";
    /// When model policies last handled it.
    pub const POLICED: &str = "policed";
    /// [`super::BackendCode`] as an integer.
    pub const BACKEND_CODE: &str = "backend_code";
    /// What the latest sync or teardown said.
    pub const BACKEND_STATUS: &str = "backend_status";
    /// Failures in a row and the next retry, as JSON.
    pub const BACKEND_REGISTER: &str = "backend_register";
    /// Set with `deleted`: the teardown has not run yet.
    pub const BACKEND_NEED_DELETE: &str = "backend_need_delete";
    /// [`super::PolicyCode`] as an integer.
    pub const POLICY_CODE: &str = "policy_code";
    /// What the latest policy run said.
    pub const POLICY_STATUS: &str = "policy_status";
    /// Marked deleted: torn down, then purged.
    pub const DELETED: &str = "deleted";
    /// Never synced (e.g. imported by a pull step).
    pub const NO_SYNC: &str = "no_sync";
    /// Never policed.
    pub const NO_POLICY: &str = "no_policy";
    /// Not changeable or deletable through the API.
    pub const WRITE_PROTECT: &str = "write_protect";
    /// Not synced until unblocked.
    pub const LAZY_BLOCKED: &str = "lazy_blocked";
}

/// Where an object's sync stands (`backend_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendCode {
    /// Not enacted yet, or deferred (0).
    Pending,
    /// The latest sync succeeded (1).
    Enacted,
    /// The latest sync failed or trapped (2).
    Failed,
}

impl BackendCode {
    /// The integer the API shows.
    pub fn as_i64(self) -> i64 {
        match self {
            BackendCode::Pending => 0,
            BackendCode::Enacted => 1,
            BackendCode::Failed => 2,
        }
    }

    /// The code `object` carries; anything unknown reads as pending.
    pub fn of(object: &Object) -> BackendCode {
        match object
            .fields
            .get(field::BACKEND_CODE)
            .and_then(Value::as_i64)
        {
            Some(1) => BackendCode::Enacted,
            Some(2) => BackendCode::Failed,
            _ => BackendCode::Pending,
        }
    }
}

/// Where an object's model policies stand (`policy_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyCode {
    /// Not policed yet (0).
    Pending,
    /// The latest policy run succeeded (1).
    Done,
    /// The latest policy run failed (2).
    Failed,
}

impl PolicyCode {
    /// The integer the API shows.
    pub fn as_i64(self) -> i64 {
        match self {
            PolicyCode::Pending => 0,
            PolicyCode::Done => 1,
            PolicyCode::Failed => 2,
        }
    }
}

impl Object {
    /// Whether the boolean bookkeeping field `name` (e.g.
    /// [`field::NO_SYNC`]) is set.
    pub fn flag(&self, name: &str) -> bool {
        self.fields.get(name) == Some(&Value::Bool(true))
    }

    /// Whether the object is marked deleted.
    pub fn is_deleted(&self) -> bool {
        self.flag(field::DELETED)
    }

    /// Where its sync stands.
    pub fn backend_code(&self) -> BackendCode {
        BackendCode::of(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_from_objects_as_the_api_shows_them() {
        let mut object = Object {
            id: 1,
            model: "M".into(),
            fields: serde_json::Map::new(),
            sync: Default::default(),
        };
        assert_eq!(object.backend_code(), BackendCode::Pending);
        for code in [
            BackendCode::Enacted,
            BackendCode::Failed,
            BackendCode::Pending,
        ] {
            object
                .fields
                .insert(field::BACKEND_CODE.into(), Value::from(code.as_i64()));
            assert_eq!(object.backend_code(), code);
        }
        assert!(!object.is_deleted());
        object
            .fields
            .insert(field::DELETED.into(), Value::Bool(true));
        assert!(object.is_deleted() && !object.flag(field::NO_SYNC));
        assert_eq!(PolicyCode::Failed.as_i64(), 2);
    }
}
