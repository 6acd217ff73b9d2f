//! SQLSTATE codes (generated).
