//! execute (being implemented).
