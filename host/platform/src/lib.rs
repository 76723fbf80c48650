//! Composes core, engine and runtime into a running host; service packages and their installation
