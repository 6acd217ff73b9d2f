//! Bounds-checked primitives shared by the generated message views.
