//! roll (being written).
