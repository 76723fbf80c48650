//! HTTP API: XOS-style REST, TOSCA /run and /custom_type, service onboarding, authentication
