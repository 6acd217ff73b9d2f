//! Typed message views (generated).
