//! Core errors.

/// What went wrong in a core operation. Variants up to [`Error::Conflict`]
/// are the caller's fault and safe to show to a client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No model of that name is installed.
    #[error("unknown model `{0}`")]
    UnknownModel(String),
    /// The model is abstract and cannot have objects.
    #[error("model `{0}` is abstract and has no objects of its own")]
    AbstractModel(String),
    /// The object does not exist.
    #[error("{model} {id} does not exist")]
    NotFound {
        /// The model asked for.
        model: String,
        /// The id asked for.
        id: i64,
    },
    /// A field value or name is wrong.
    #[error("{model}.{field}: {message}")]
    InvalidField {
        /// The model.
        model: String,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The request conflicts with existing state.
    #[error("{0}")]
    Conflict(String),
    /// Deleting the object would cascade to more than `limit` objects
    /// ([`crate::MAX_CASCADE`]); nothing was deleted.
    #[error(
        "deleting {model} {id} would delete or change more than {limit} other objects; delete or relink its dependents in smaller steps first"
    )]
    CascadeTooLarge {
        /// The model of the object to delete.
        model: String,
        /// The id of the object to delete.
        id: i64,
        /// The most objects one deletion may reach.
        limit: usize,
    },
    /// The caller may not do this (a security policy or a user rule).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A validator of the model refused the object.
    #[error("{model}: {message}")]
    Rejected {
        /// The model.
        model: String,
        /// The validator's message.
        message: String,
    },
    /// Creating the object would take a service beyond the most objects
    /// its operator allows (`syncplane service limits`).
    #[error(
        "service `{service}` has {count} objects, its limit (max_objects {limit}); no `{model}` was created (delete some of its objects, or raise the limit: syncplane service limits {service} --max-objects N)"
    )]
    QuotaExceeded {
        /// The service (the quota's owner).
        service: String,
        /// The model of the object refused.
        model: String,
        /// The most objects allowed.
        limit: u64,
        /// How many its models hold.
        count: u64,
    },
    /// Wrong user name or password, or an unknown, expired or revoked
    /// token.
    #[error("invalid credentials")]
    BadCredentials,
    /// Too many password checks are waiting for the hashing pool; the
    /// check was not made (retry shortly, or use a token).
    #[error(
        "too many sign-ins are waiting for a password check; try again shortly, or use a token"
    )]
    PasswordChecksBusy,
    /// The user has no token with that id or name.
    #[error("you have no token with id or name `{0}`")]
    UnknownToken(String),
    /// A watch asked to resume after change `since`, but the change log
    /// no longer holds the changes right after it
    /// ([`crate::CHANGE_LOG_RETENTION`]): the watcher must list again.
    #[error(
        "changes after {since} are no longer kept (the log starts at {oldest}); list the objects again, then watch from the latest change"
    )]
    ChangesExpired {
        /// The sequence the watch asked to resume after.
        since: i64,
        /// The oldest change the log still holds.
        oldest: i64,
    },
    /// A watch asked to resume after a change that has not happened
    /// (a sequence from another database, say).
    #[error("no change {since} yet: the latest is {latest}")]
    ChangeAhead {
        /// The sequence the watch asked to resume after.
        since: i64,
        /// The latest change in the log.
        latest: i64,
    },
    /// Models that do not fit with the installed ones.
    #[error(transparent)]
    Xproto(#[from] syncplane_xproto::Error),
    /// The database failed.
    #[error("storage failed")]
    Store(#[from] syncplane_store::Error),
    /// Password hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// One item of a batch ([`crate::CoreTx::create_many`]) was refused:
    /// `[3].name: is required` for a field, else `[3]: ` and the error.
    /// The batch is refused whole.
    #[error("{}", item_message(*index, error))]
    Item {
        /// The item's position in the batch, from 0.
        index: usize,
        /// What was wrong with it.
        error: Box<Error>,
    },
}

fn item_message(index: usize, error: &Error) -> String {
    match error {
        Error::InvalidField { field, message, .. } => format!("[{index}].{field}: {message}"),
        other => format!("[{index}]: {other}"),
    }
}

impl Error {
    /// Whether the error is the caller's fault (a 4xx, not a 5xx).
    pub fn is_client_error(&self) -> bool {
        match self {
            Error::Item { error, .. } => error.is_client_error(),
            other => !matches!(
                other,
                Error::Store(_) | Error::Hash(_) | Error::PasswordChecksBusy
            ),
        }
    }

    /// The error of one item of a batch, as [`Error::Item`].
    pub fn at(self, index: usize) -> Self {
        Error::Item {
            index,
            error: Box::new(self),
        }
    }

    /// For [`Error::Item`], the item's index and its own error; else
    /// `None` and the error itself.
    pub fn item(&self) -> (Option<usize>, &Error) {
        match self {
            Error::Item { index, error } => (Some(*index), error),
            other => (None, other),
        }
    }

    /// Whether the database was busy (locked by another process): nothing
    /// was written and the same request may succeed shortly.
    pub fn is_busy(&self) -> bool {
        matches!(self, Error::Store(e) if e.is_busy())
    }

    /// Whether the disk holding the database is full: nothing was written.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, Error::Store(e) if e.is_full())
    }

    /// Whether the database, not the request, failed (busy, full disk, I/O
    /// error): nothing was written and the same work may succeed later.
    pub fn is_storage_unavailable(&self) -> bool {
        matches!(self, Error::Store(e) if e.is_unavailable())
    }

    pub(crate) fn invalid(model: &str, field: &str, message: impl Into<String>) -> Self {
        Error::InvalidField {
            model: model.to_owned(),
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Result with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `e` and each error under it, joined with `: `, so a message or a log
/// line says what failed down to the database's own words.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
